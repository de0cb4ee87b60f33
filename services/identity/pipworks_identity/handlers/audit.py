"""Verifying the audit log's hash chain on a staff member's request."""

from __future__ import annotations

from pipworks_identity.handlers.context import Deps
from pipworks_platform.audit import ChainReport, verify_and_record


async def verify_audit_log(deps: Deps, actor: str) -> ChainReport:
    """Check the chain and record that (and what) was checked, by whom."""
    return await verify_and_record(deps.uow, actor, deps.clock())
