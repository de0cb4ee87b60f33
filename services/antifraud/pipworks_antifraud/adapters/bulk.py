"""The streaming hot path in bulk: one statement per table for a whole batch of events,
on the transaction's own asyncpg connection (the same transaction as the inbox rows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_antifraud.adapters.store import StaleState
from pipworks_antifraud.domain.state import ClientState
from pipworks_platform.db import driver_connection

_LOAD = "SELECT user_id, version, state::text FROM client_state WHERE user_id = ANY($1::uuid[])"
_SHARED = """
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[]) AS t(kind, key, user_id)
), added AS (
    INSERT INTO shared_keys (kind, key, user_id, first_seen)
    SELECT kind, key, user_id, $4 FROM wanted ON CONFLICT DO NOTHING
)
SELECT s.kind, s.key, count(*),
       array_agg(s.user_id) FILTER (WHERE s.user_id = ANY($3::uuid[]))
FROM shared_keys AS s JOIN (SELECT DISTINCT kind, key FROM wanted) AS w USING (kind, key)
GROUP BY s.kind, s.key
"""
_WRITE = """
WITH inserted AS (
    INSERT INTO client_state (user_id, version, state, updated_at)
    SELECT u, 1, s::jsonb, $1 FROM unnest($2::uuid[], $3::text[]) AS t(u, s)
    ON CONFLICT DO NOTHING RETURNING 1
), updated AS (
    UPDATE client_state AS c SET version = c.version + 1, state = t.s::jsonb, updated_at = $1
    FROM unnest($4::uuid[], $5::bigint[], $6::text[]) AS t(u, v, s)
    WHERE c.user_id = t.u AND c.version = t.v RETURNING 1
), recorded AS (
    INSERT INTO evaluated_events (event_id, user_id, kind, occurred_at, document, score,
                                  shadow_score, hits)
    SELECT e, u, k, o, d::jsonb, s, h, x::jsonb
    FROM unnest($7::uuid[], $8::uuid[], $9::text[], $10::timestamptz[], $11::text[],
                $12::numeric[], $13::numeric[], $14::text[]) AS t(e, u, k, o, d, s, h, x)
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM inserted) + (SELECT count(*) FROM updated)
"""


async def load_states(session: AsyncSession, users: Iterable[str]) -> dict[str, ClientState]:
    conn = await driver_connection(session)
    ids = [uuid.UUID(u) for u in users]
    return {
        str(row[0]): ClientState.from_document(str(row[0]), row[1], json.loads(row[2]))
        for row in await conn.fetch(_LOAD, ids)
    }


async def shared_counts(
    session: AsyncSession, wanted: Sequence[tuple[str, str, str]], now: datetime
) -> tuple[dict[tuple[str, str], int], set[tuple[str, str, str]]]:
    """How many clients used each (kind, key) before this batch, and which of the batch's
    (kind, key, user) triples were already known; the new triples are recorded."""
    if not wanted:
        return {}, set()
    conn = await driver_connection(session)
    users = [uuid.UUID(u) for _, _, u in wanted]
    rows = await conn.fetch(
        _SHARED, [k for k, _, _ in wanted], [v for _, v, _ in wanted], users, now
    )
    counts = {(r[0], r[1]): int(r[2]) for r in rows}
    batch = {(k, v, u) for k, v, u in wanted}
    present = {
        (r[0], r[1], str(user))
        for r in rows
        for user in (r[3] or ())
        if (r[0], r[1], str(user)) in batch
    }
    return counts, present


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _event_columns(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The evaluated events as the column arrays ``unnest`` takes, in table order."""
    return [
        [r["event_id"] for r in rows],
        [r["user_id"] for r in rows],
        [r["kind"] for r in rows],
        [r["occurred_at"] for r in rows],
        [_dump(r["document"]) for r in rows],
        [r["score"] for r in rows],
        [r["shadow_score"] for r in rows],
        [_dump(r["hits"]) for r in rows],
    ]


async def write(
    session: AsyncSession,
    states: Sequence[ClientState],
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """Every state as version+1 and the evaluated events, in one round trip; StaleState
    when any state changed under us (the caller's transaction then rolls back)."""
    conn = await driver_connection(session)
    new = [s for s in states if s.version == 0]
    old = [s for s in states if s.version > 0]
    written = await conn.fetchval(
        _WRITE,
        now,
        [uuid.UUID(s.user_id) for s in new],
        [_dump(s.to_document()) for s in new],
        [uuid.UUID(s.user_id) for s in old],
        [s.version for s in old],
        [_dump(s.to_document()) for s in old],
        *_event_columns(rows),
    )
    if written != len(states):
        raise StaleState("a client state changed concurrently")
    for state in states:
        state.version += 1
