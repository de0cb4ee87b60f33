"""Verifying the audit log's hash chain."""

from __future__ import annotations

from pipworks_identity.adapters.repositories import AuditLogRepository
from pipworks_identity.domain.audit import AuditRecord, ChainReport, ChainVerifier
from pipworks_identity.handlers.context import Deps
from pipworks_platform.db import UnitOfWorkFactory


async def check_chain(uow_factory: UnitOfWorkFactory) -> ChainReport:
    """Recompute the chain from the first entry; read-only (used by the CLI too)."""
    verifier = ChainVerifier()
    async with uow_factory() as uow:
        async for entry in AuditLogRepository(uow.session).entries():
            if not verifier.feed(entry):
                break
    return verifier.report()


async def verify_audit_log(deps: Deps, actor: str) -> ChainReport:
    """Check the chain and record that (and what) was checked, by whom."""
    report = await check_chain(deps.uow)
    async with deps.uow() as uow:
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
            deps.clock(),
        )
        await uow.commit()
    return report
