"""Per-server deal sync cursors."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import sync_cursors


class CursorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, server: str) -> datetime | None:
        return (
            await self._session.execute(
                sa.select(sync_cursors.c.synced_until).where(sync_cursors.c.server == server)
            )
        ).scalar_one_or_none()

    async def save(self, server: str, synced_until: datetime, now: datetime) -> None:
        """Move the cursor forward; it never goes back, whoever writes last."""
        statement = pg_insert(sync_cursors).values(
            server=server, synced_until=synced_until, updated_at=now
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["server"],
                set_={
                    "synced_until": sa.func.greatest(
                        sync_cursors.c.synced_until, statement.excluded.synced_until
                    ),
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
