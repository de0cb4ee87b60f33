"""Clean-up of rows that can no longer be used (expired tokens, idle buckets, old sessions)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from pipworks_identity.adapters.repositories.housekeeping import purge_expired
from pipworks_identity.handlers.context import Deps

# Ended sessions stay in the database this long (for support and investigations).
SESSION_HISTORY = timedelta(days=90)
# One replica purges at a time; the others skip the pass ("PWPURGE").
PURGE_LOCK_KEY = 0x5057505552474500


async def purge(deps: Deps) -> dict[str, int] | None:
    """One clean-up pass; None when another replica is already doing it."""
    now = deps.clock()
    async with deps.uow() as uow:
        acquired = await uow.session.scalar(
            sa.select(sa.func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY))
        )
        if not acquired:
            return None
        deleted = await purge_expired(
            uow.session,
            now=now,
            idle_buckets_since=now - deps.config.throttle.idle_after(),
            ended_before=now - SESSION_HISTORY,
        )
        await uow.commit()
    return deleted
