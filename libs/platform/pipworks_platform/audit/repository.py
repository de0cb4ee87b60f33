"""The audit log table of a service database.

Appends serialise on a transaction-scoped advisory lock taken before the chain head is
read, so two transactions can never both extend the same head (the chain cannot fork);
the lock is released when the appending transaction ends, with the entry in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_platform.audit.chain import AuditEntry, AuditRecord, append
from pipworks_platform.db.tables import audit_log

# "PWAUDIT" as a 64-bit advisory lock key; distinct from the platform's keys.
AUDIT_LOCK_KEY = 0x5057415544495400


class AuditLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, record: AuditRecord, now: datetime) -> AuditEntry:
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
        head_row = (
            await self._session.execute(
                sa.select(audit_log).order_by(audit_log.c.sequence.desc()).limit(1)
            )
        ).one_or_none()
        head = _entry(head_row._mapping) if head_row is not None else None
        entry = append(head, record, now)
        await self._session.execute(
            sa.insert(audit_log).values(
                sequence=entry.sequence,
                occurred_at=entry.occurred_at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                details=entry.details,
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        return entry

    async def entries(self, *, batch_size: int = 1000) -> AsyncIterator[AuditEntry]:
        """Every entry in sequence order, read in keyset batches."""
        after = 0
        while True:
            rows = (
                await self._session.execute(
                    sa.select(audit_log)
                    .where(audit_log.c.sequence > after)
                    .order_by(audit_log.c.sequence)
                    .limit(batch_size)
                )
            ).all()
            for row in rows:
                yield _entry(row._mapping)
            if len(rows) < batch_size:
                return
            after = rows[-1]._mapping["sequence"]


def _entry(m: sa.RowMapping) -> AuditEntry:
    return AuditEntry(
        sequence=m["sequence"],
        occurred_at=m["occurred_at"],
        actor=m["actor"],
        action=m["action"],
        subject=m["subject"],
        details=m["details"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )
