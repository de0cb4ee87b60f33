"""Commission plans: creation and new versions (never edits), with validation first."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pipworks_ib.adapters import store
from pipworks_ib.domain.plans import PlanTerms, PlanVersion, check_new_version, validate_terms
from pipworks_ib.handlers.context import Caller, Deps
from pipworks_ib.handlers.partners import audit
from pipworks_platform.errors import AlreadyExists, InvalidArgument, NotFound

_PLAN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_plan_id(plan_id: str) -> None:
    if not _PLAN_ID.fullmatch(plan_id):
        raise InvalidArgument.for_field(
            "plan_id", "lower-case letters, digits and '-', up to 63 characters"
        )


async def create_plan(
    deps: Deps,
    caller: Caller,
    plan_id: str,
    name: str,
    terms: PlanTerms,
    effective_from: datetime | None,
) -> dict[str, Any]:
    check_plan_id(plan_id)
    validate_terms(terms)
    now = deps.clock()
    start = effective_from or now
    check_new_version([], start, now)
    async with deps.uow() as uow:
        if not await store.insert_plan(uow.session, plan_id, name or plan_id, now):
            raise AlreadyExists("the plan exists; add a version instead", reason="PLAN_EXISTS")
        await store.insert_plan_version(uow.session, plan_id, 1, start, terms, now, caller.actor)
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.plan.created",
            f"plan:{plan_id}",
            version=1,
            effective_from=start.isoformat(),
        )
        await uow.commit()
    return {
        "plan_id": plan_id,
        "version": 1,
        "effective_from": start,
        "terms": terms,
        "created_at": now,
    }


async def create_plan_version(
    deps: Deps, caller: Caller, plan_id: str, terms: PlanTerms, effective_from: datetime | None
) -> dict[str, Any]:
    check_plan_id(plan_id)
    validate_terms(terms)
    now = deps.clock()
    if effective_from is None:
        raise InvalidArgument.for_field("effective_from", "is required")
    async with deps.uow() as uow:
        if await store.plan(uow.session, plan_id, lock=True) is None:
            raise NotFound("plan", plan_id, reason="PLAN_NOT_FOUND")
        existing = (await store.load_plan_versions(uow.session, [plan_id])).get(plan_id, [])
        version = check_new_version(existing, effective_from, now)
        await store.insert_plan_version(
            uow.session, plan_id, version, effective_from, terms, now, caller.actor
        )
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.plan.version_created",
            f"plan:{plan_id}",
            version=version,
            effective_from=effective_from.isoformat(),
        )
        await uow.commit()
    return {
        "plan_id": plan_id,
        "version": version,
        "effective_from": effective_from,
        "terms": terms,
        "created_at": now,
    }


async def get_plan(deps: Deps, plan_id: str) -> tuple[str, list[tuple[PlanVersion, datetime]]]:
    async with deps.uow() as uow:
        row = await store.plan(uow.session, plan_id)
        if row is None:
            raise NotFound("plan", plan_id, reason="PLAN_NOT_FOUND")
        return row["name"], await store.plan_history(uow.session, plan_id)
