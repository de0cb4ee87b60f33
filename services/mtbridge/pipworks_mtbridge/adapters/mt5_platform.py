"""The MT5 Web API as a :class:`TradingPlatform`, over ``pipworks_mtbridge.mt5.Mt5Client``.

Rights map onto MT5 user rights: trading off is ``USER_RIGHT_TRADE_DISABLED``;
withdrawals off is the ``WITHDRAWAL_DISABLED`` extension bit (which a real MT5 stores
but does not enforce, so the bridge checks it itself before withdrawing).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal

from pipworks_mtbridge.domain.accounts import GroupTerms, Rights
from pipworks_mtbridge.domain.deals import Deal
from pipworks_mtbridge.domain.errors import (
    NotEnoughMoney,
    PlatformNotFound,
    PlatformRejected,
    PlatformUnavailable,
)
from pipworks_mtbridge.domain.ports import AccountState, NewAccount, Position
from pipworks_mtbridge.mt5 import (
    BalanceType,
    Mt5Account,
    Mt5AuthError,
    Mt5Client,
    Mt5Deal,
    Mt5Error,
    Mt5InvalidParams,
    Mt5NotEnoughMoney,
    Mt5NotFound,
    Mt5Unavailable,
    UserRights,
)


class Mt5Platform:
    """One MT5 server through its manager Web API."""

    def __init__(self, client: Mt5Client) -> None:
        self._client = client

    async def close(self) -> None:
        await self._client.close()

    async def group_terms(self, group: str) -> GroupTerms:
        async with _translated():
            found = await self._client.get_group(group)
        return GroupTerms(
            name=found.name,
            currency=found.currency,
            currency_digits=found.currency_digits,
            leverage_min=found.leverage_min,
            leverage_max=found.leverage_max,
        )

    async def open_account(self, account: NewAccount) -> int:
        async with _translated():
            user = await self._client.add_user(
                group=account.group,
                name=account.name,
                email=account.email,
                leverage=account.leverage,
                password_main=account.password,
                password_investor=account.investor_password,
            )
        return user.login

    async def account_state(self, login: int) -> AccountState:
        async with _translated():
            found = await self._client.get_account(login)
        return _state(found)

    async def account_states(self, logins: Sequence[int]) -> list[AccountState]:
        async with _translated():
            found = await self._client.get_accounts(list(logins))
        return [_state(a) for a in found]

    async def set_leverage(self, login: int, leverage: int) -> None:
        async with _translated():
            await self._client.update_user(login, leverage=leverage)

    async def set_rights(self, login: int, rights: Rights) -> None:
        async with _translated():
            current = (await self._client.get_user(login)).rights
            wanted = _with_flag(current, UserRights.TRADE_DISABLED, not rights.trading)
            wanted = _with_flag(wanted, UserRights.WITHDRAWAL_DISABLED, not rights.withdrawals)
            if wanted != current:
                await self._client.update_user(login, rights=int(wanted))

    async def apply_balance(
        self, login: int, amount: Decimal, comment: str, *, credit: bool
    ) -> int:
        kind = BalanceType.CREDIT if credit else BalanceType.BALANCE
        async with _translated():
            return await self._client.trade_balance(login, kind, amount, comment)

    async def deals(
        self,
        *,
        since: datetime,
        until: datetime,
        logins: Sequence[int] | None = None,
        group_mask: str | None = None,
    ) -> list[Deal]:
        async with _translated():
            found = await self._client.get_deals(
                logins=list(logins) if logins is not None else None,
                group=group_mask,
                since=since,
                until=until,
            )
        return [_deal(d) for d in found]

    async def positions(self, logins: Sequence[int]) -> list[Position]:
        if not logins:
            return []
        async with _translated():
            found = await self._client.get_positions(logins=list(logins))
        return [
            Position(
                position_id=p.position_id,
                login=p.login,
                symbol=p.symbol,
                action=int(p.action),
                volume_lots=p.volume_lots,
                open_price=p.price_open,
                current_price=p.price_current,
                profit=p.profit,
                swap=p.swap,
                opened_at=p.time,
            )
            for p in found
        ]


@contextlib.asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """MT5 errors as domain errors; a refused manager login means the platform is unusable."""
    try:
        yield
    except (Mt5Unavailable, Mt5AuthError) as exc:
        raise PlatformUnavailable(str(exc)) from exc
    except Mt5NotEnoughMoney as exc:
        raise NotEnoughMoney(str(exc)) from exc
    except Mt5NotFound as exc:
        raise PlatformNotFound(str(exc)) from exc
    except (Mt5InvalidParams, Mt5Error) as exc:
        raise PlatformRejected(str(exc)) from exc


def _with_flag(rights: UserRights, flag: UserRights, on: bool) -> UserRights:
    return rights | flag if on else rights & ~flag


def _state(account: Mt5Account) -> AccountState:
    return AccountState(
        login=account.login,
        balance=account.balance,
        credit=account.credit,
        equity=account.equity,
        margin=account.margin,
        free_margin=account.margin_free,
        margin_level=account.margin_level,
    )


def _deal(deal: Mt5Deal) -> Deal:
    return Deal(
        ticket=deal.ticket,
        login=deal.login,
        action=int(deal.action),
        entry=int(deal.entry),
        symbol=deal.symbol,
        volume_lots=deal.volume_lots,
        price=deal.price,
        profit=deal.profit,
        commission=deal.commission,
        swap=deal.swap,
        time=deal.time,
        position_id=deal.position_id,
        comment=deal.comment,
    )
