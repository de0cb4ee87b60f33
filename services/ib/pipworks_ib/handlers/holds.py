"""Anti-fraud holds: a restricted client's commissions accrue held; the case's outcome
releases them (false positive) or forfeits them with reversal rows (confirmed)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import structlog

from pipworks.events.v1 import antifraud_pb2, ib_pb2
from pipworks_ib.adapters import store
from pipworks_ib.handlers.commissions import (
    BadEvent,
    accrual_message,
    event_uuid,
    ledger_id,
    timestamp,
)
from pipworks_ib.handlers.context import Deps
from pipworks_platform.db import UnitOfWork

log = structlog.get_logger(__name__)
HOLD_NAMESPACE = uuid.UUID("0d7f1b5e-34c2-4a8e-8a0e-3c9b1f6d2a11")
FORFEIT_REASON = "FRAUD_CONFIRMED"


def _as_dict(raw: object) -> object:
    return json.loads(raw) if isinstance(raw, str) else raw


def _when(stamp: object, fallback: datetime) -> datetime:
    if stamp is not None and stamp.ByteSize():  # type: ignore[attr-defined]
        return stamp.ToDatetime(UTC)  # type: ignore[attr-defined,no-any-return]
    return fallback


async def on_restricted(
    deps: Deps, uow: UnitOfWork, message: antifraud_pb2.AntifraudClientRestricted, event_id: str
) -> None:
    client = event_uuid(message.user_id, "user_id")
    key = message.restriction_id or event_id
    hold_id = uuid.uuid5(HOLD_NAMESPACE, key)
    at = _when(message.occurred_at, deps.clock())
    await store.insert_hold(uow.session, hold_id, client, message.case_id, key, at)
    log.info("commissions held", client=str(client), hold_id=str(hold_id))


async def on_unrestricted(
    deps: Deps, uow: UnitOfWork, message: antifraud_pb2.AntifraudClientUnrestricted
) -> None:
    """New activity is no longer held. Held rows wait for the case; a restriction that
    had no case is released at once."""
    client = event_uuid(message.user_id, "user_id")
    at = _when(message.occurred_at, deps.clock())
    lifted = await store.lift_holds(uow.session, client, message.restriction_id, at)
    without_case = [row["id"] for row in lifted if not row["case_id"]]
    if without_case:
        await store.resolve_holds(uow.session, client, "", "released", at, hold_ids=without_case)


async def on_case_resolved(
    deps: Deps, uow: UnitOfWork, message: antifraud_pb2.AntifraudCaseResolved
) -> None:
    client = event_uuid(message.user_id, "user_id")
    at = _when(message.resolved_at, deps.clock())
    if message.resolution == antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_FALSE_POSITIVE:
        released = await store.resolve_holds(uow.session, client, message.case_id, "released", at)
        log.info("held commissions released", client=str(client), holds=len(released))
        return
    if message.resolution != antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_CONFIRMED:
        raise BadEvent("the case resolution is unspecified")
    forfeited = await store.resolve_holds(uow.session, client, message.case_id, "forfeited", at)
    if forfeited:
        await reverse(deps, uow, await store.held_accruals(uow.session, forfeited), FORFEIT_REASON)


async def reverse(deps: Deps, uow: UnitOfWork, originals: list, reason: str) -> int:
    """Offset rows: one reversal per original, keyed by it, so it happens once."""
    if not originals:
        return 0
    now = deps.clock()
    rows = []
    for original in originals:
        source_key = f"reversal:{original['id']}"
        rows.append(
            {
                **store.json_ready(original),
                "id": ledger_id(),
                "source_key": source_key,
                "entry_kind": "reversal",
                "amount": str(-original["amount"]),
                "reverses": str(original["id"]),
                "explanation": {
                    "reverses": str(original["id"]),
                    "reason": reason,
                    "original": _as_dict(original["explanation"]),
                },
                "recorded_at": now.isoformat(),
            }
        )
    written = await store.append_ledger(uow.session, rows)
    fresh = [r for r in rows if r["id"] in written]
    if fresh:
        uow.emit(
            ib_pb2.IbCommissionReversed(
                reversals=[accrual_message(r) for r in fresh],
                reason=reason,
                reversed_at=timestamp(now),
            )
        )
    return len(fresh)
