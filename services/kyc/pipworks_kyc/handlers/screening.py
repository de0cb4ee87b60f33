"""Screening applicants against the loaded lists, resolving hits, reloading the lists."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime
from decimal import Decimal

from pipworks.events.v1 import kyc_pb2
from pipworks_kyc.adapters.repositories import (
    ApplicationRepository,
    Hit,
    HitRepository,
    ListRepository,
)
from pipworks_kyc.domain.applications import PENDING, Application, State
from pipworks_kyc.domain.templates import parse_date
from pipworks_kyc.handlers.context import Deps, audit
from pipworks_kyc.handlers.risk import rerate
from pipworks_platform.audit import SYSTEM_ACTOR
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

CLEARED = "cleared"
CONFIRMED = "confirmed"
OPEN = "open"
RESCREEN_BATCH = 500


def screened_name(app: Application) -> str:
    answers = app.answers
    if answers.get("company_name"):
        return answers["company_name"]
    return " ".join(part for part in (answers.get("first_name"), answers.get("last_name")) if part)


async def screen(
    deps: Deps, uow: UnitOfWork, app: Application, now: datetime, *, application_id: bool = True
) -> list[Hit]:
    """Screen the applicant; store new hits and emit a ``kyc.screening.hit`` for each."""
    await deps.screening.ensure_current(uow.session)
    name = screened_name(app)
    if not name:
        return []
    birth = parse_date(app.answers.get("date_of_birth", ""))
    matches = deps.screening.search(name, birth)
    hits = [
        Hit(
            id=uuid.uuid4(),
            user_id=app.user_id,
            application_id=app.id if application_id else None,
            list_source=m.entry.source,
            list_entry_id=m.entry.entry_id,
            entry_name=m.entry.name,
            topics=m.entry.topics,
            score=Decimal(str(m.score)),
            status=OPEN,
            resolved_by=None,
            resolution_reason="",
            created_at=now,
        )
        for m in matches
    ]
    added = await HitRepository(uow.session).add_new(hits)
    for hit in added:
        event = kyc_pb2.KycScreeningHit(
            hit_id=str(hit.id),
            user_id=str(hit.user_id),
            application_id=str(hit.application_id or ""),
            list_source=hit.list_source,
            list_entry_id=hit.list_entry_id,
            topics=list(hit.topics),
            score=str(hit.score),
        )
        event.screened_at.FromDatetime(now)
        uow.emit(event)
        await audit(
            uow,
            SYSTEM_ACTOR,
            "kyc.screening.hit",
            f"user:{hit.user_id}",
            now,
            hit_id=str(hit.id),
            list_source=hit.list_source,
            list_entry_id=hit.list_entry_id,
            score=str(hit.score),
        )
    return added


async def resolve_hit(
    deps: Deps, reviewer: str, hit_id: uuid.UUID, resolution: str, reason: str
) -> Hit:
    if resolution not in (CLEARED, CONFIRMED):
        raise InvalidArgument.for_field("resolution", "must be CLEARED or CONFIRMED")
    if not reason.strip():
        raise InvalidArgument.for_field("reason", "is required")
    now = deps.clock()
    async with deps.uow() as uow:
        hits = HitRepository(uow.session)
        hit = await hits.get(hit_id, lock=True)
        if hit is None:
            raise NotFound("screening hit", str(hit_id))
        if str(hit.user_id) == reviewer:
            raise PermissionDenied(
                "a reviewer cannot resolve a hit about themselves", reason="OWN_APPLICATION"
            )
        if hit.status != OPEN:
            raise FailedPrecondition(
                f"the hit is already {hit.status}", reason="HIT_ALREADY_RESOLVED"
            )
        await hits.resolve(hit_id, resolution, reviewer, reason, now)
        await audit(
            uow,
            reviewer,
            f"kyc.screening.{resolution}",
            f"user:{hit.user_id}",
            now,
            hit_id=str(hit_id),
            reason=reason,
        )
        apps = ApplicationRepository(uow.session, deps.cipher)
        app = await apps.latest_of(hit.user_id, lock=True)
        if app is not None and app.state in PENDING:
            await rerate(deps, uow, app, now)
        await uow.commit()
    return dataclasses.replace(
        hit, status=resolution, resolved_by=reviewer, resolution_reason=reason
    )


async def reload_lists(
    deps: Deps, actor: str, *, only_if_changed: bool = False
) -> tuple[dict[str, int], int, int]:
    """Reload the configured list files and rescreen approved clients.

    With ``only_if_changed`` (start-up), lists whose content is what the database already
    holds are left alone, and approved clients are rescreened only when a list changed.
    Returns (entries per list, clients rescreened, new hits).
    """
    loaded = await asyncio.to_thread(deps.screening.read_files)
    now = deps.clock()
    changed = False
    async with deps.uow() as uow:
        repo = ListRepository(uow.session)
        await repo.lock()
        stored = await repo.digests()
        for source, (entries, digest) in loaded.items():
            if only_if_changed and stored.get(source) == digest:
                continue
            await repo.replace(source, entries, digest, now)
            changed = True
        counts = {source: len(entries) for source, (entries, _) in loaded.items()}
        if changed:
            await audit(uow, actor, "kyc.lists.reloaded", "lists", now, entries=counts)
        await uow.commit()
    if not changed:
        return counts, 0, 0
    rescreened, new_hits = await rescreen_approved(deps)
    return counts, rescreened, new_hits


async def rescreen_approved(deps: Deps) -> tuple[int, int]:
    """Screen every approved client's newest approved application again, each in its own
    transaction; (clients rescreened, new hits)."""
    rescreened = new_hits = 0
    after: uuid.UUID | None = None
    while True:
        async with deps.uow() as uow:
            batch = await ApplicationRepository(uow.session, deps.cipher).latest_approved_batch(
                after, RESCREEN_BATCH
            )
        if not batch:
            return rescreened, new_hits
        after = batch[-1].user_id
        for app in batch:
            async with deps.uow() as uow:
                added = await screen(deps, uow, app, deps.clock(), application_id=False)
                await uow.commit()
            rescreened += 1
            new_hits += len(added)


def blocks_approval(hits: list[Hit]) -> tuple[int, int]:
    """(open hits, confirmed sanctions hits)."""
    open_hits = sum(1 for h in hits if h.status == OPEN)
    sanctions = sum(
        1 for h in hits if h.status == CONFIRMED and any(t.startswith("sanction") for t in h.topics)
    )
    return open_hits, sanctions


__all__ = ["State", "blocks_approval", "reload_lists", "resolve_hit", "screen"]
