"""The deal mirror: every deal of a known account, stored once per (server, ticket).

The mirror is also what makes the sync exactly-once: a deal is published only when its
row is inserted, in the same transaction as the outbox row and the cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import deals
from pipworks_mtbridge.domain.deals import Deal


@dataclass(frozen=True)
class MirroredDeal:
    server: str
    user_id: uuid.UUID
    deal: Deal


@dataclass(frozen=True)
class DealFilter:
    """Either a user's deals or one account's, within [start, end)."""

    user_id: uuid.UUID | None
    server: str | None
    login: int | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class DealCursor:
    executed_at: datetime
    server: str
    ticket: int


class DealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_new(self, server: str, owned: Sequence[tuple[uuid.UUID, Deal]]) -> set[int]:
        """Mirror the deals; return the tickets that were not mirrored before."""
        if not owned:
            return set()
        rows = [
            {
                "server": server,
                "ticket": deal.ticket,
                "login": deal.login,
                "user_id": user_id,
                "action": deal.action,
                "entry": deal.entry,
                "symbol": deal.symbol,
                "volume_lots": deal.volume_lots,
                "price": deal.price,
                "profit": deal.profit,
                "commission": deal.commission,
                "swap": deal.swap,
                "position_id": deal.position_id,
                "comment": deal.comment,
                "executed_at": deal.time,
            }
            for user_id, deal in owned
        ]
        # executemany form: one cached statement, batched by SQLAlchemy's insertmanyvalues.
        result = await self._session.execute(
            pg_insert(deals).on_conflict_do_nothing().returning(deals.c.ticket), rows
        )
        return set(result.scalars())

    async def known(self, server: str, tickets: Sequence[int]) -> set[int]:
        """The tickets among ``tickets`` the mirror already holds."""
        if not tickets:
            return set()
        result = await self._session.execute(
            sa.select(deals.c.ticket).where(
                deals.c.server == server, deals.c.ticket.in_(sorted(set(tickets)))
            )
        )
        return set(result.scalars())

    async def page(
        self, where: DealFilter, *, limit: int, after: DealCursor | None
    ) -> list[MirroredDeal]:
        query = sa.select(deals)
        if where.user_id is not None:
            query = query.where(deals.c.user_id == where.user_id)
        if where.server is not None and where.login is not None:
            query = query.where(deals.c.server == where.server, deals.c.login == where.login)
        if where.start is not None:
            query = query.where(deals.c.executed_at >= where.start)
        if where.end is not None:
            query = query.where(deals.c.executed_at < where.end)
        if after is not None:
            query = query.where(
                sa.tuple_(deals.c.executed_at, deals.c.server, deals.c.ticket)
                > sa.tuple_(
                    sa.literal(after.executed_at, deals.c.executed_at.type),
                    sa.literal(after.server),
                    sa.literal(after.ticket, sa.BigInteger),
                )
            )
        query = query.order_by(deals.c.executed_at, deals.c.server, deals.c.ticket).limit(limit)
        return [_mirrored(r) for r in (await self._session.execute(query)).mappings()]


def _mirrored(row: sa.RowMapping) -> MirroredDeal:
    return MirroredDeal(
        server=row["server"],
        user_id=row["user_id"],
        deal=Deal(
            ticket=row["ticket"],
            login=row["login"],
            action=row["action"],
            entry=row["entry"],
            symbol=row["symbol"],
            volume_lots=row["volume_lots"],
            price=row["price"],
            profit=row["profit"],
            commission=row["commission"],
            swap=row["swap"],
            time=row["executed_at"],
            position_id=row["position_id"],
            comment=row["comment"],
        ),
    )
