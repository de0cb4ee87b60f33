"""Login restrictions placed by anti-fraud, one row per restriction record."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import login_restrictions as restrictions


class LoginRestrictionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, user_id: uuid.UUID, restriction_id: str, case_id: str, reason: str, at: datetime
    ) -> bool:
        """Record a restriction; False when it was already recorded."""
        added = await self._session.scalar(
            pg_insert(restrictions)
            .values(
                restriction_id=restriction_id,
                user_id=user_id,
                case_id=case_id,
                reason=reason,
                restricted_at=at,
            )
            .on_conflict_do_nothing(index_elements=["restriction_id"])
            .returning(restrictions.c.restriction_id)
        )
        return added is not None

    async def lift(self, user_id: uuid.UUID, restriction_id: str) -> int:
        """Drop one restriction, or every restriction of the user when no id is given."""
        query = sa.delete(restrictions).where(restrictions.c.user_id == user_id)
        if restriction_id:
            query = query.where(restrictions.c.restriction_id == restriction_id)
        return (await self._session.execute(query)).rowcount

    async def is_restricted(self, user_id: uuid.UUID) -> bool:
        found = await self._session.scalar(
            sa.select(sa.literal(True)).where(restrictions.c.user_id == user_id).limit(1)
        )
        return bool(found)
