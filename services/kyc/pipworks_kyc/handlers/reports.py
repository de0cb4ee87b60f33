"""Compliance reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pipworks_kyc.adapters.repositories import (
    ApplicationRepository,
    DocumentRepository,
    HitRepository,
)
from pipworks_kyc.handlers.context import Deps


@dataclass(frozen=True)
class Report:
    by_state: dict[str, int]
    pending_older: int
    expiring_documents: int
    open_hits: int


async def compliance_report(deps: Deps, pending_hours: int, expiring_days: int) -> Report:
    now = deps.clock()
    horizon = now.date() + timedelta(days=expiring_days)
    async with deps.uow() as uow:
        apps = ApplicationRepository(uow.session, deps.cipher)
        by_state = await apps.counts_by_state()
        pending = await apps.pending_before(now - timedelta(hours=pending_hours))
        docs = DocumentRepository(uow.session, deps.cipher)
        expiring = 0
        after = None
        while batch := await docs.expiring_batch(after, 1000):
            after = batch[-1][0].id
            expiring += sum(
                1 for doc, _, _ in batch if doc.expires_on is not None and doc.expires_on <= horizon
            )
        open_hits = await HitRepository(uow.session).count_open()
    return Report(by_state, pending, expiring, open_hits)
