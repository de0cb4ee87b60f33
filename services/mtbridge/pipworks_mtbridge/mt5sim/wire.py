"""MT5 Web API JSON shapes of the simulator's records: every number is a string."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipworks_mtbridge.mt5sim.model import Deal, Group, Position, User
from pipworks_mtbridge.mt5sim.pricing import Symbol
from pipworks_mtbridge.mt5sim.state import AccountState

__all__ = ["account_json", "deal_json", "group_json", "position_json", "symbol_json", "user_json"]

_VOLUME_EXT_PER_VOLUME = 10_000  # VolumeExt (1e-8 lot) per Volume (1e-4 lot)


def _s(value: Decimal | int) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def user_json(user: User) -> dict[str, Any]:
    return {
        "Login": _s(user.login),
        "Group": user.group,
        "CertSerialNumber": "0",
        "Rights": _s(user.rights),
        "Registration": _s(user.registration),
        "LastAccess": _s(user.last_access or user.registration),
        "Name": user.name,
        "Company": "",
        "Country": "",
        "Language": "0",
        "Email": user.email,
        "Phone": "",
        "Comment": "",
        "Status": "",
        "Leverage": _s(user.leverage),
        "Agent": "0",
        "Balance": _s(user.balance),
        "Credit": _s(user.credit),
    }


def account_json(account: AccountState) -> dict[str, Any]:
    return {
        "Login": _s(account.login),
        "CurrencyDigits": _s(account.currency_digits),
        "Balance": _s(account.balance),
        "Credit": _s(account.credit),
        "Margin": _s(account.margin),
        "MarginFree": _s(account.margin_free),
        "MarginLevel": _s(account.margin_level),
        "MarginLeverage": _s(account.leverage),
        "Profit": _s(account.profit),
        "Storage": _s(account.storage),
        "Commission": "0",
        "Floating": _s(account.profit + account.storage),
        "Equity": _s(account.equity),
        "SOActivation": "0",
        "SOTime": "0",
        "SOLevel": "0",
        "SOEquity": "0",
        "SOMargin": "0",
        "Assets": "0",
        "Liabilities": "0",
    }


def deal_json(deal: Deal) -> dict[str, Any]:
    return {
        "Deal": _s(deal.deal),
        "ExternalID": "",
        "Login": _s(deal.login),
        "Dealer": "0",
        "Order": _s(deal.deal if deal.symbol else 0),
        "Action": _s(deal.action),
        "Entry": _s(deal.entry),
        "Reason": "0",
        "Digits": _s(deal.digits),
        "DigitsCurrency": "2",
        "ContractSize": _s(deal.contract_size),
        "Time": _s(deal.time_msc // 1000),
        "TimeMsc": _s(deal.time_msc),
        "Symbol": deal.symbol,
        "Price": _s(deal.price),
        "Volume": _s(deal.volume_ext // _VOLUME_EXT_PER_VOLUME),
        "VolumeExt": _s(deal.volume_ext),
        "Profit": _s(deal.profit),
        "Storage": _s(deal.storage),
        "Commission": _s(deal.commission),
        "Fee": "0",
        "PositionID": _s(deal.position_id),
        "Comment": deal.comment,
    }


def position_json(
    position: Position, price_current: Decimal, profit: Decimal, digits: int
) -> dict[str, Any]:
    return {
        "Position": _s(position.position),
        "ExternalID": "",
        "Login": _s(position.login),
        "Symbol": position.symbol,
        "Action": _s(position.action),
        "Digits": _s(digits),
        "PriceOpen": _s(position.price_open),
        "PriceCurrent": _s(price_current),
        "Volume": _s(position.volume_ext // _VOLUME_EXT_PER_VOLUME),
        "VolumeExt": _s(position.volume_ext),
        "Profit": _s(profit),
        "Storage": _s(position.storage),
        "TimeCreate": _s(position.time_msc // 1000),
        "TimeCreateMsc": _s(position.time_msc),
        "TimeUpdate": _s(position.time_msc // 1000),
        "Comment": "",
    }


def group_json(group: Group) -> dict[str, Any]:
    return {
        "Group": group.name,
        "Currency": group.currency,
        "CurrencyDigits": _s(group.currency_digits),
        "MarginMode": "0",
        "MarginSOMode": "0",
        "MarginCall": _s(group.margin_call),
        "MarginStopOut": _s(group.stop_out),
        "LeverageMin": _s(group.leverage_min),
        "LeverageMax": _s(group.leverage_max),
        "Commission": _s(group.commission_per_lot),
    }


def symbol_json(symbol: Symbol) -> dict[str, Any]:
    return {
        "Symbol": symbol.name,
        "CurrencyBase": symbol.base,
        "CurrencyProfit": symbol.quote,
        "CurrencyMargin": symbol.base if symbol.forex else symbol.quote,
        "ContractSize": _s(symbol.contract_size),
        "Digits": _s(symbol.digits),
        "Point": _s(symbol.point),
        "Spread": _s(symbol.spread_points),
    }
