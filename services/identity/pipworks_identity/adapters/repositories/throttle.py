"""Per-address token buckets in PostgreSQL, shared by every identity replica."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import ip_throttle
from pipworks_identity.domain.throttle import BucketDecision, BucketState, TokenBucketPolicy


class ThrottleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take(self, address: str, policy: TokenBucketPolicy, now: datetime) -> BucketDecision:
        """Take a token from ``address``'s bucket; the row lock serialises its attempts."""
        full = policy.full(now)
        await self._session.execute(
            pg_insert(ip_throttle)
            .values(address=address, tokens=full.tokens, updated_at=full.updated_at)
            .on_conflict_do_nothing(index_elements=[ip_throttle.c.address])
        )
        row = (
            await self._session.execute(
                sa.select(ip_throttle.c.tokens, ip_throttle.c.updated_at)
                .where(ip_throttle.c.address == address)
                .with_for_update()
            )
        ).one()
        decision = policy.take(BucketState(tokens=row.tokens, updated_at=row.updated_at), now)
        await self._session.execute(
            sa.update(ip_throttle)
            .where(ip_throttle.c.address == address)
            .values(tokens=decision.state.tokens, updated_at=decision.state.updated_at)
        )
        return decision
