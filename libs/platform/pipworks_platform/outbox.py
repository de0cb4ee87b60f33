"""Outbox relay: publishes committed outbox rows to JetStream, in commit order.

One relay per service is active at a time (a session advisory lock elects it among
replicas). It wakes on LISTEN/NOTIFY from committing transactions and also polls, so a
lost notification only delays an event. Each event is published with
``Nats-Msg-Id`` = event id, so a row re-sent after a crash between publish and mark is
dropped by JetStream's duplicate window. While NATS or PostgreSQL is down the relay
backs off and retries; committed events wait in the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from pipworks_platform.backoff import Backoff
from pipworks_platform.db.engine import libpq_dsn
from pipworks_platform.db.unit_of_work import outbox_channel
from pipworks_platform.events import nats_headers
from pipworks_platform.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from pipworks_platform.tracing import extract_trace_context, inject_trace_headers

# Session-level lock naming the active relay; distinct from the writers' xact lock key.
RELAY_LEADER_LOCK_KEY = 0x50574F5554524C59
PURGE_INTERVAL_SECONDS = 600.0

_FETCH = """
SELECT id, event_id, subject, event_type, payload, headers, occurred_at
FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT $1
"""
_MARK = "UPDATE outbox_events SET published_at = now() WHERE id = ANY($1::bigint[])"
_BACKLOG = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
_PURGE = "DELETE FROM outbox_events WHERE published_at < now() - $1::interval"

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)


class PublishIncomplete(Exception):
    """JetStream did not acknowledge every event of a batch."""


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        nats: NATS,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        retention: timedelta = timedelta(days=1),
    ) -> None:
        self._service = service
        self._dsn = libpq_dsn(database_url)
        self._nats = nats
        self._js = nats.jetstream()
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._retention = retention
        self._channel = outbox_channel(service)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._is_leader = False

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    def stop(self) -> None:
        """Ask the relay to finish its current batch and return from :meth:`run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("outbox relay cannot reach postgres", error=str(exc))
                await self._sleep(backoff.next_delay())
                continue
            try:
                backoff.reset()
                await self._serve(conn, backoff)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay lost postgres", error=str(exc))
                await self._sleep(backoff.next_delay())
            finally:
                self._is_leader = False
                await _close_quietly(conn)

    async def _serve(self, conn: asyncpg.Connection, backoff: Backoff) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LEADER_LOCK_KEY):
            if await self._sleep(self._poll_interval):
                return
        self._is_leader = True
        log.info("outbox relay active", service=self._service)
        await conn.add_listener(self._channel, self._on_notify)
        purged_at = time.monotonic()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.publish_pending(conn)
                backoff.reset()
            except PublishIncomplete as exc:
                OUTBOX_PUBLISH_FAILURES.labels(self._service).inc()
                log.warning("outbox publish incomplete; will retry", reason=str(exc))
                await self._sleep(backoff.next_delay())
                continue
            if time.monotonic() - purged_at >= PURGE_INTERVAL_SECONDS:
                await conn.execute(_PURGE, self._retention)
                purged_at = time.monotonic()
            await self._wait_for_work()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish every unpublished row, oldest first; return how many were sent."""
        sent = 0
        while True:
            rows = await conn.fetch(_FETCH, self._batch_size)
            if not rows:
                break
            if not self._nats.is_connected:
                await self._record_backlog(conn)
                raise PublishIncomplete("NATS is not connected")
            acked = await self._publish_batch(rows)
            if acked:
                await conn.execute(_MARK, [row["id"] for row in rows[:acked]])
                OUTBOX_PUBLISHED.labels(self._service).inc(acked)
                sent += acked
            if acked < len(rows):
                await self._record_backlog(conn)
                raise PublishIncomplete(f"{len(rows) - acked} of {len(rows)} not acknowledged")
            if len(rows) < self._batch_size:
                break
        await self._record_backlog(conn)
        return sent

    async def _publish_batch(self, rows: Sequence[asyncpg.Record]) -> int:
        """Pipeline a batch; return the length of the acknowledged prefix."""
        futures: list[asyncio.Future[Any]] = []
        try:
            for row in rows:
                futures.append(await self._publish_one(row))
        except Exception as exc:
            log.warning("outbox publish failed", error=repr(exc))
        if futures:
            await asyncio.wait(futures, timeout=self._publish_timeout)
        acked = 0
        for future in futures:
            if not future.done() or future.cancelled() or future.exception() is not None:
                break
            acked += 1
        for future in futures:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved, so asyncio does not warn
        return acked

    async def _publish_one(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        stored = row["headers"]
        stored = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
        parent = extract_trace_context(stored)
        with tracer.start_as_current_span(
            f"{row['subject']} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": row["subject"],
                "messaging.message.id": str(row["event_id"]),
            },
        ):
            headers = nats_headers(
                event_id=str(row["event_id"]),
                event_type=row["event_type"],
                occurred_at=row["occurred_at"],
                extra={k: v for k, v in stored.items() if k not in ("traceparent", "tracestate")},
            )
            inject_trace_headers(headers)
            return await self._js.publish_async(
                row["subject"], bytes(row["payload"]), headers=headers
            )

    async def _record_backlog(self, conn: asyncpg.Connection) -> None:
        OUTBOX_BACKLOG.labels(self._service).set(await conn.fetchval(_BACKLOG))

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; return True when the relay should stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=2)
    except Exception:
        conn.terminate()
