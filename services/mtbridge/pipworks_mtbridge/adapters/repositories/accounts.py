"""Trading accounts mapped to users."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import accounts
from pipworks_mtbridge.domain.accounts import Rights, TradingAccount


@dataclass(frozen=True)
class AccountCursor:
    """Position after the last account of a page (accounts list oldest first)."""

    opened_at: datetime
    server: str
    login: int


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, account: TradingAccount) -> None:
        await self._session.execute(sa.insert(accounts).values(**_row(account)))

    async def get(
        self, server: str, login: int, *, for_update: bool = False
    ) -> TradingAccount | None:
        query = sa.select(accounts).where(accounts.c.server == server, accounts.c.login == login)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return _account(row) if row else None

    async def of_user(self, user_id: uuid.UUID) -> list[TradingAccount]:
        query = (
            sa.select(accounts)
            .where(accounts.c.user_id == user_id)
            .order_by(accounts.c.opened_at, accounts.c.server, accounts.c.login)
        )
        return [_account(r) for r in (await self._session.execute(query)).mappings()]

    async def page_of_user(
        self, user_id: uuid.UUID, *, limit: int, after: AccountCursor | None
    ) -> list[TradingAccount]:
        query = sa.select(accounts).where(accounts.c.user_id == user_id)
        if after is not None:
            query = query.where(
                sa.tuple_(accounts.c.opened_at, accounts.c.server, accounts.c.login)
                > sa.tuple_(
                    sa.literal(after.opened_at, accounts.c.opened_at.type),
                    sa.literal(after.server),
                    sa.literal(after.login, sa.BigInteger),
                )
            )
        query = query.order_by(accounts.c.opened_at, accounts.c.server, accounts.c.login).limit(
            limit
        )
        return [_account(r) for r in (await self._session.execute(query)).mappings()]

    async def on_server(
        self, server: str, logins: Collection[int] | None = None
    ) -> dict[int, TradingAccount]:
        """The server's accounts by login: all of them, or only those among ``logins``."""
        query = sa.select(accounts).where(accounts.c.server == server)
        if logins is not None:
            # One array parameter, however many logins a sync pass saw.
            query = query.where(
                accounts.c.login == sa.any_(sa.literal(sorted(set(logins)), ARRAY(sa.BigInteger)))
            )
        return {r["login"]: _account(r) for r in (await self._session.execute(query)).mappings()}

    async def earliest_opening(self, server: str) -> datetime | None:
        query = sa.select(sa.func.min(accounts.c.opened_at)).where(accounts.c.server == server)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def save(self, account: TradingAccount) -> None:
        await self._session.execute(
            sa.update(accounts)
            .where(accounts.c.server == account.server, accounts.c.login == account.login)
            .values(
                leverage=account.leverage,
                trading_enabled=account.rights.trading,
                withdrawals_enabled=account.rights.withdrawals,
            )
        )


def _row(account: TradingAccount) -> dict[str, object]:
    return {
        "server": account.server,
        "login": account.login,
        "user_id": account.user_id,
        "group_name": account.group,
        "currency": account.currency,
        "currency_digits": account.currency_digits,
        "leverage": account.leverage,
        "trading_enabled": account.rights.trading,
        "withdrawals_enabled": account.rights.withdrawals,
        "opened_at": account.opened_at,
    }


def _account(row: sa.RowMapping) -> TradingAccount:
    return TradingAccount(
        server=row["server"],
        login=row["login"],
        user_id=row["user_id"],
        group=row["group_name"],
        currency=row["currency"],
        currency_digits=row["currency_digits"],
        leverage=row["leverage"],
        rights=Rights(trading=row["trading_enabled"], withdrawals=row["withdrawals_enabled"]),
        opened_at=row["opened_at"],
    )
