"""Typed MT5 records and enumerations, parsed from Web API JSON objects.

Every ``from_wire`` raises ``Mt5Error`` (a protocol violation) when a required field is
missing or malformed, so callers deal with one exception family only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, IntFlag
from typing import Any, TypeVar

from pipworks_mtbridge.mt5.errors import Mt5Error
from pipworks_mtbridge.mt5.wire import from_msc, from_seconds, lots_of, to_decimal, to_int

__all__ = [
    "BalanceType",
    "DealAction",
    "DealEntry",
    "Mt5Account",
    "Mt5Deal",
    "Mt5Group",
    "Mt5Position",
    "Mt5User",
    "UserRights",
]

T = TypeVar("T")


class UserRights(IntFlag):
    """MT5 ``USER_RIGHT_*`` bit flags (``IMTUser::Rights``, a 64-bit mask).

    ``WITHDRAWAL_DISABLED`` is a Pipworks extension in bit 32, above every flag MT5
    defines: the simulator refuses withdrawals (negative ``trade/balance`` of type
    BALANCE) for such a login with retcode 8. A real MT5 server stores the bit but does
    not enforce it, so the bridge must also check it before withdrawing.
    """

    NONE = 0
    ENABLED = 0x1
    PASSWORD = 0x2
    TRADE_DISABLED = 0x4
    INVESTOR = 0x8
    CONFIRMED = 0x10
    TRAILING = 0x20
    EXPERT = 0x40
    OBSOLETE = 0x80
    REPORTS = 0x100
    READONLY = 0x200
    RESET_PASS = 0x400
    OTP_ENABLED = 0x800
    WITHDRAWAL_DISABLED = 0x1_0000_0000

    # What MT5 gives a new client by default: enabled, may change password, EAs, trailing.
    @classmethod
    def default(cls) -> UserRights:
        return cls.ENABLED | cls.PASSWORD | cls.TRAILING | cls.EXPERT | cls.REPORTS


class BalanceType(IntEnum):
    """The ``type`` of ``trade/balance``: the deal action it creates."""

    BALANCE = 2
    CREDIT = 3


class DealAction(IntEnum):
    """MT5 ``IMTDeal::EnDealAction``."""

    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6
    COMMISSION = 7
    COMMISSION_DAILY = 8
    COMMISSION_MONTHLY = 9
    AGENT_DAILY = 10
    AGENT_MONTHLY = 11
    INTERESTRATE = 12
    BUY_CANCELED = 13
    SELL_CANCELED = 14
    DIVIDEND = 15
    DIVIDEND_FRANKED = 16
    TAX = 17
    AGENT = 18


class DealEntry(IntEnum):
    """MT5 ``IMTDeal::EnDealEntry``."""

    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


def _enum_or_int(enum: type[IntEnum], value: int) -> int:
    try:
        return enum(value)
    except ValueError:
        return value  # a newer server's value: keep the number


def _field(record: Mapping[str, Any], name: str, convert: Callable[[Any], T]) -> T:
    try:
        return convert(record[name])
    except KeyError:
        raise Mt5Error(f"malformed reply: field {name} is missing") from None
    except (TypeError, ValueError) as exc:
        raise Mt5Error(f"malformed reply: field {name}: {exc}") from None


def _optional(record: Mapping[str, Any], name: str, convert: Callable[[Any], T], default: T) -> T:
    if record.get(name) in (None, ""):
        return default
    return _field(record, name, convert)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _mapping(record: Any) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise Mt5Error("malformed reply: expected a JSON object")
    return record


@dataclass(frozen=True, slots=True)
class Mt5User:
    login: int
    group: str
    name: str
    email: str
    leverage: int
    rights: UserRights
    registration: datetime

    @classmethod
    def from_wire(cls, raw: Any) -> Mt5User:
        r = _mapping(raw)
        return cls(
            login=_field(r, "Login", to_int),
            group=_field(r, "Group", _text),
            name=_optional(r, "Name", _text, ""),
            email=_optional(r, "Email", _text, ""),
            leverage=_field(r, "Leverage", to_int),
            rights=UserRights(_field(r, "Rights", to_int)),
            registration=_field(r, "Registration", from_seconds),
        )

    @property
    def trading_enabled(self) -> bool:
        return UserRights.TRADE_DISABLED not in self.rights

    @property
    def withdrawals_enabled(self) -> bool:
        return UserRights.WITHDRAWAL_DISABLED not in self.rights


@dataclass(frozen=True, slots=True)
class Mt5Account:
    """Trading state of a login; ``margin_level`` is 0 when there is no margin in use."""

    login: int
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal
    profit: Decimal = Decimal(0)
    currency: str | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> Mt5Account:
        r = _mapping(raw)
        return cls(
            login=_field(r, "Login", to_int),
            balance=_field(r, "Balance", to_decimal),
            credit=_optional(r, "Credit", to_decimal, Decimal(0)),
            equity=_field(r, "Equity", to_decimal),
            margin=_optional(r, "Margin", to_decimal, Decimal(0)),
            margin_free=_field(r, "MarginFree", to_decimal),
            margin_level=_optional(r, "MarginLevel", to_decimal, Decimal(0)),
            profit=_optional(r, "Profit", to_decimal, Decimal(0)),
            currency=_optional(r, "Currency", _text, None),
        )


@dataclass(frozen=True, slots=True)
class Mt5Deal:
    """A deal; ``swap`` is MT5's ``Storage``, ``time`` its ``TimeMsc`` (UTC, ms)."""

    ticket: int
    login: int
    action: int
    entry: int
    symbol: str
    volume_lots: Decimal
    price: Decimal
    profit: Decimal
    commission: Decimal
    swap: Decimal
    time: datetime
    position_id: int
    comment: str
    contract_size: Decimal | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> Mt5Deal:
        r = _mapping(raw)
        time = (
            _field(r, "TimeMsc", from_msc)
            if r.get("TimeMsc") not in (None, "")
            else _field(r, "Time", from_seconds)
        )
        try:
            lots = lots_of(r)
        except (KeyError, TypeError, ValueError) as exc:
            raise Mt5Error(f"malformed reply: deal volume: {exc}") from None
        contract = _optional(r, "ContractSize", to_decimal, None)
        return cls(
            ticket=_field(r, "Deal", to_int),
            login=_field(r, "Login", to_int),
            action=_enum_or_int(DealAction, _field(r, "Action", to_int)),
            entry=_enum_or_int(DealEntry, _optional(r, "Entry", to_int, 0)),
            symbol=_optional(r, "Symbol", _text, ""),
            volume_lots=lots,
            price=_optional(r, "Price", to_decimal, Decimal(0)),
            profit=_optional(r, "Profit", to_decimal, Decimal(0)),
            commission=_optional(r, "Commission", to_decimal, Decimal(0)),
            swap=_optional(r, "Storage", to_decimal, Decimal(0)),
            time=time,
            position_id=_optional(r, "PositionID", to_int, 0),
            comment=_optional(r, "Comment", _text, ""),
            contract_size=contract if contract else None,
        )


@dataclass(frozen=True, slots=True)
class Mt5Position:
    position_id: int
    login: int
    symbol: str
    action: int
    volume_lots: Decimal
    price_open: Decimal
    price_current: Decimal
    profit: Decimal
    swap: Decimal
    time: datetime

    @classmethod
    def from_wire(cls, raw: Any) -> Mt5Position:
        r = _mapping(raw)
        time = (
            _field(r, "TimeCreateMsc", from_msc)
            if r.get("TimeCreateMsc") not in (None, "")
            else _field(r, "TimeCreate", from_seconds)
        )
        try:
            lots = lots_of(r)
        except (KeyError, TypeError, ValueError) as exc:
            raise Mt5Error(f"malformed reply: position volume: {exc}") from None
        return cls(
            position_id=_field(r, "Position", to_int),
            login=_field(r, "Login", to_int),
            symbol=_field(r, "Symbol", _text),
            action=_enum_or_int(DealAction, _field(r, "Action", to_int)),
            volume_lots=lots,
            price_open=_field(r, "PriceOpen", to_decimal),
            price_current=_optional(r, "PriceCurrent", to_decimal, Decimal(0)),
            profit=_optional(r, "Profit", to_decimal, Decimal(0)),
            swap=_optional(r, "Storage", to_decimal, Decimal(0)),
            time=time,
        )


@dataclass(frozen=True, slots=True)
class Mt5Group:
    """Group settings the bridge needs.

    ``leverage_min``/``leverage_max`` come from ``LeverageMin``/``LeverageMax``, which the
    simulator sends; a server without them gets the MT5 UI limits 1..1000.
    """

    name: str
    currency: str
    currency_digits: int
    leverage_min: int
    leverage_max: int
    margin_call: Decimal
    stop_out: Decimal

    @classmethod
    def from_wire(cls, raw: Any) -> Mt5Group:
        r = _mapping(raw)
        return cls(
            name=_field(r, "Group", _text),
            currency=_field(r, "Currency", _text),
            currency_digits=_field(r, "CurrencyDigits", to_int),
            leverage_min=_optional(r, "LeverageMin", to_int, 1),
            leverage_max=_optional(r, "LeverageMax", to_int, 1000),
            margin_call=_optional(r, "MarginCall", to_decimal, Decimal(0)),
            stop_out=_optional(r, "MarginStopOut", to_decimal, Decimal(0)),
        )
