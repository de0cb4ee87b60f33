"""Recomputing a service's audit chain, and recording that it was checked."""

from __future__ import annotations

from datetime import datetime

from pipworks_platform.audit.chain import AuditRecord, ChainReport, ChainVerifier
from pipworks_platform.audit.repository import AuditLogRepository
from pipworks_platform.db import UnitOfWorkFactory


async def check_chain(uow_factory: UnitOfWorkFactory) -> ChainReport:
    """Recompute the chain from the first entry; read-only (the CLI uses it too)."""
    verifier = ChainVerifier()
    async with uow_factory() as uow:
        async for entry in AuditLogRepository(uow.session).entries():
            if not verifier.feed(entry):
                break
    return verifier.report()


async def verify_and_record(
    uow_factory: UnitOfWorkFactory, actor: str, now: datetime
) -> ChainReport:
    """Check the chain, then append who checked it and what was found."""
    report = await check_chain(uow_factory)
    async with uow_factory() as uow:
        await AuditLogRepository(uow.session).append(
            AuditRecord(
                actor=actor,
                action="audit.verified",
                subject="audit_log",
                details={
                    "intact": report.intact,
                    "entries_checked": report.entries_checked,
                    "first_broken_sequence": report.first_broken_sequence,
                },
            ),
            now,
        )
        await uow.commit()
    return report
