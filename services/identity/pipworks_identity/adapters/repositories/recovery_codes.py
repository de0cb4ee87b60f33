"""TOTP recovery codes, stored as digests; each works once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import recovery_codes


class RecoveryCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace(self, user_id: uuid.UUID, digests: Sequence[bytes], now: datetime) -> None:
        """Issue a fresh set; every earlier code stops working."""
        await self.delete_all(user_id)
        await self._session.execute(
            sa.insert(recovery_codes),
            [{"user_id": user_id, "code_hash": d, "created_at": now} for d in digests],
        )

    async def consume(self, user_id: uuid.UUID, digest: bytes, now: datetime) -> bool:
        used = await self._session.scalar(
            sa.update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == digest,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=now)
            .returning(recovery_codes.c.user_id)
        )
        return used is not None

    async def delete_all(self, user_id: uuid.UUID) -> None:
        await self._session.execute(
            sa.delete(recovery_codes).where(recovery_codes.c.user_id == user_id)
        )
