"""Deleting what can no longer be used: expired tokens and challenges, idle buckets."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import (
    ip_throttle,
    mfa_challenges,
    one_time_tokens,
    refresh_tokens,
    sessions,
)


async def purge_expired(
    session: AsyncSession, *, now: datetime, idle_buckets_since: datetime, ended_before: datetime
) -> dict[str, int]:
    """Delete dead rows; returns how many went from each table.

    Spent refresh tokens stay while their session lives (they are how reuse is noticed);
    ended sessions are kept until ``ended_before`` for the user's session history.
    """
    statements = {
        "mfa_challenges": sa.delete(mfa_challenges).where(
            sa.or_(mfa_challenges.c.expires_at <= now, mfa_challenges.c.used_at.is_not(None))
        ),
        "one_time_tokens": sa.delete(one_time_tokens).where(
            sa.or_(one_time_tokens.c.expires_at <= now, one_time_tokens.c.used_at.is_not(None))
        ),
        "refresh_tokens": sa.delete(refresh_tokens).where(refresh_tokens.c.expires_at <= now),
        "sessions": sa.delete(sessions).where(
            sa.or_(sessions.c.expires_at < ended_before, sessions.c.revoked_at < ended_before)
        ),
        "ip_throttle": sa.delete(ip_throttle).where(ip_throttle.c.updated_at < idle_buckets_since),
    }
    deleted = {}
    for table, statement in statements.items():
        result = await session.execute(statement)
        deleted[table] = result.rowcount or 0
    return deleted
