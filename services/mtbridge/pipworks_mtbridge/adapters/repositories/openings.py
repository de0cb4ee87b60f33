"""Account openings in progress: recorded before the platform is asked, so one key opens
at most one account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import account_openings


@dataclass(frozen=True)
class Opening:
    key: str
    user_id: uuid.UUID
    server: str
    login: int | None
    created_at: datetime


class OpeningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, key: str, user_id: uuid.UUID, server: str, now: datetime) -> None:
        """Record the opening unless it already exists (then the first one stands)."""
        await self._session.execute(
            pg_insert(account_openings)
            .values(opening_key=key, user_id=user_id, server=server, created_at=now)
            .on_conflict_do_nothing()
        )

    async def lock(self, key: str) -> Opening | None:
        """The opening, locked until the transaction ends: one opener at a time."""
        row = (
            (
                await self._session.execute(
                    sa.select(account_openings)
                    .where(account_openings.c.opening_key == key)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return Opening(
            key=row["opening_key"],
            user_id=row["user_id"],
            server=row["server"],
            login=row["login"],
            created_at=row["created_at"],
        )

    async def complete(self, key: str, login: int, now: datetime) -> None:
        await self._session.execute(
            sa.update(account_openings)
            .where(account_openings.c.opening_key == key)
            .values(login=login, completed_at=now)
        )
