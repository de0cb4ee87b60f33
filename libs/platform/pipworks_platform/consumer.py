"""Durable JetStream pull consumers that apply each event exactly once.

Each event is applied in one transaction together with an inbox row keyed by
(consumer, event id): a redelivered event (lost ack, crash before ack, publisher
retry) finds its inbox row and is acknowledged without being applied again. A failing
handler is retried with backoff (``nak`` with a delay); after ``max_deliver`` attempts,
or at once for a message that cannot be decoded, the message is parked on the
dead-letter subject ``pipworks.deadletter.<service>.<durable>`` with the reason, and
terminated.

An *ordered* subscription also applies its events in stream order across failures and
crashes. JetStream hands a delivery nobody settled (the process died, or the connection
dropped, before the ack) back only after ``ack_wait``, and a delayed ``nak`` only after
its delay, while newer events keep flowing: an ordered consumer therefore restarts from
its ack floor when it (re)binds and finds deliveries still pending, and on a failure
stops at the failed event, hands it and everything after it back at once, and waits out
the retry delay itself. The inbox makes the replayed events no-ops. Ordering needs one
consuming process per durable, so among replicas an ordered consumer runs only in the one
holding its leader lock (:mod:`pipworks_platform.leader`); the others stand by.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.errors
import sqlalchemy as sa
import structlog
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from pipworks_platform.backoff import Backoff
from pipworks_platform.db.errors import is_transient_db_error
from pipworks_platform.db.unit_of_work import UnitOfWork, UnitOfWorkFactory
from pipworks_platform.events import (
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_MSG_ID,
    HEADER_OCCURRED_AT,
    UnknownEventError,
    decode_event,
)
from pipworks_platform.leader import LeaderLock
from pipworks_platform.metrics import (
    CONSUMER_BATCHES,
    CONSUMER_HANDLER_LATENCY,
    CONSUMER_LAG,
    CONSUMER_PROCESSED,
    CONSUMER_REDELIVERIES,
)
from pipworks_platform.streams import (
    deadletter_stream,
    deadletter_subject,
    ensure_stream,
    producer_of,
    service_stream,
)
from pipworks_platform.tracing import extract_trace_context, inject_trace_headers

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

HEADER_DL_REASON = "Pipworks-Dead-Letter-Reason"
HEADER_DL_CONSUMER = "Pipworks-Dead-Letter-Consumer"
HEADER_DL_SUBJECT = "Pipworks-Original-Subject"
HEADER_DL_DELIVERIES = "Pipworks-Deliveries"
HEADER_DL_SEQUENCE = "Pipworks-Stream-Sequence"
MAX_REASON_LENGTH = 1024
LAG_REFRESH_SECONDS = 5.0
TRANSIENT_RETRY_CAP_SECONDS = 5.0
# How often a consumer running under a leader lock checks that it still holds it.
LEADER_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class InboundEvent:
    """A decoded event as a handler sees it."""

    event_id: uuid.UUID
    subject: str
    message: Message
    occurred_at: datetime | None
    delivery: int
    # The producer's trace context (from the message headers), for spans a batch handler
    # starts per event so each joins its own producer's trace.
    trace_context: Context | None = None


Handler = Callable[[InboundEvent, UnitOfWork], Awaitable[None]]
# Applies several first deliveries in one transaction, in stream order.
BatchHandler = Callable[[Sequence[InboundEvent], UnitOfWork], Awaitable[None]]


class PermanentError(Exception):
    """Raised by a handler for an event that can never be applied; skips the retries."""


@dataclass(frozen=True)
class Subscription:
    """What a service consumes: a durable consumer on another service's stream."""

    durable: str
    subjects: Sequence[str]
    handler: Handler
    max_deliver: int = 5
    backoff: Sequence[float] = (1.0, 5.0, 30.0, 120.0)
    ack_wait: float = 30.0
    batch_size: int = 64
    stream_replicas: int = 1
    deliver_policy: DeliverPolicy = field(default=DeliverPolicy.ALL)
    # When set, a fetch of first deliveries is applied by one call in one transaction
    # (one inbox insert); if that fails, the batch is applied event by event through
    # ``handler``, so a poison event is retried and dead-lettered on its own.
    batch_handler: BatchHandler | None = None
    # Events must apply in stream order (an account before its deals, an opening before
    # its close), also across failures and restarts; see the module docstring.
    ordered: bool = False

    @property
    def stream(self) -> str:
        return service_stream(self.producer).name

    @property
    def producer(self) -> str:
        """The service whose stream the subjects live in."""
        producers = {producer_of(s) for s in self.subjects}
        if len(producers) != 1:
            raise ValueError(f"{self.durable}: subjects must come from one producing service")
        return producers.pop()

    def retry_delay(self, delivery: int) -> float:
        return self.backoff[min(delivery, len(self.backoff)) - 1]


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        nats: NATS,
        unit_of_work: UnitOfWorkFactory,
        subscription: Subscription,
        fetch_timeout: float = 2.0,
        leader: LeaderLock | None = None,
    ) -> None:
        self._service = service
        self._leader = leader
        self._nats = nats
        self._js = nats.jetstream()
        self._uow = unit_of_work
        self._sub = subscription
        self._fetch_timeout = fetch_timeout
        self._stopping = asyncio.Event()
        self._labels = (service, subscription.durable)
        self._lag_refreshed = 0.0
        self._reconnects = self._reconnect_count()

    @property
    def durable(self) -> str:
        return self._sub.durable

    def stop(self) -> None:
        """Finish the message in hand, then return from :meth:`run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped; with a leader lock, only while this process holds it."""
        if self._leader is None:
            await self._consume()
            return
        while await self._leader.acquire(self._stopping):
            try:
                await self._consume()
            finally:
                await self._leader.release()

    async def _consume(self) -> None:
        """Fetch and apply until stopped, or until a leader lock held for it is lost."""
        backoff = Backoff()
        psub = None
        checked = time.monotonic()
        while not self._stopping.is_set():
            if self._leader is not None and time.monotonic() - checked >= LEADER_CHECK_SECONDS:
                checked = time.monotonic()
                if not await self._leader.still_held():
                    log.warning("consumer lost its leader lock", consumer=self.durable)
                    break
            try:
                if psub is not None and self._sub.ordered and self._reconnected():
                    # Deliveries in flight when the connection dropped come back only
                    # after ack_wait: bind again, which rewinds past them in order.
                    with contextlib.suppress(Exception):
                        await psub.unsubscribe()  # type: ignore[attr-defined]
                    psub = None
                if psub is None:
                    psub = await self._subscribe()
                    backoff.reset()
                messages = await self._fetch(psub)
                if self._batchable(messages) and await self._process_batch(messages):
                    continue
                for index, msg in enumerate(messages):
                    if self._stopping.is_set():
                        await _release(messages[index:])
                        break
                    retry_in = await self._process(msg)
                    if retry_in is not None and self._sub.ordered:
                        # Nothing overtakes the failed event: the rest of the fetch goes
                        # back behind it, and the retry waits here.
                        await _release(messages[index + 1 :])
                        await self._sleep(retry_in)
                        break
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                log.warning("consumer cannot reach NATS", consumer=self.durable, error=repr(exc))
                await self._sleep(backoff.next_delay())
        if psub is not None:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _subscribe(self) -> object:
        await ensure_stream(
            self._js,
            service_stream(self._sub.producer, replicas=self._sub.stream_replicas),
            update=False,
        )
        await ensure_stream(
            self._js, deadletter_stream(replicas=self._sub.stream_replicas), update=False
        )
        stream, durable = self._sub.stream, self._sub.durable
        self._reconnects = self._reconnect_count()
        try:
            existing = await self._js.consumer_info(stream, durable)
        except NotFoundError:
            existing = None
        if existing is not None and self._sub.ordered and existing.num_ack_pending:
            await self._rewind(existing)
        else:
            config = self._config()
            if existing is not None:  # keep where it starts (it may have been rewound)
                config.deliver_policy = existing.config.deliver_policy
                config.opt_start_seq = existing.config.opt_start_seq
            await self._js.add_consumer(stream, config)
        return await self._js.pull_subscribe_bind(durable=durable, stream=stream)

    def _config(self, **start: object) -> ConsumerConfig:
        config = ConsumerConfig(
            name=self._sub.durable,
            durable_name=self._sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._sub.ack_wait,
            max_deliver=-1,  # retries are bounded here, so nothing expires unseen
            filter_subjects=list(self._sub.subjects),
            deliver_policy=self._sub.deliver_policy,
            max_ack_pending=max(1000, self._sub.batch_size * 4),
        )
        for key, value in start.items():
            setattr(config, key, value)
        return config

    async def _rewind(self, existing: ConsumerInfo) -> None:
        """Recreate the durable at its ack floor, so deliveries nobody will settle come
        back now and in order (the events applied since are dropped by the inbox)."""
        start = (existing.ack_floor.stream_seq if existing.ack_floor else 0) + 1
        log.warning(
            "ordered consumer rewinds to its ack floor",
            consumer=self.durable,
            unsettled=existing.num_ack_pending,
            from_sequence=start,
        )
        await self._js.delete_consumer(self._sub.stream, self._sub.durable)
        await self._js.add_consumer(
            self._sub.stream,
            self._config(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
        )

    def _reconnect_count(self) -> int:
        return int(getattr(self._nats, "stats", {}).get("reconnects", 0))

    def _reconnected(self) -> bool:
        return self._reconnect_count() != self._reconnects

    async def _fetch(self, psub: object) -> list[Msg]:
        fetch_task = asyncio.ensure_future(
            psub.fetch(batch=self._sub.batch_size, timeout=self._fetch_timeout)  # type: ignore[attr-defined]
        )
        stop_task = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({fetch_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        if fetch_task not in done:
            fetch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch_task
            return []
        try:
            messages = fetch_task.result()
        except TimeoutError:  # nats-py raises its own subclass or, near the deadline, the
            messages = []  # builtin one: both mean "nothing to fetch", not an outage
        await self._record_lag(psub)
        return messages

    async def _record_lag(self, psub: object) -> None:
        now = time.monotonic()
        if now - self._lag_refreshed < LAG_REFRESH_SECONDS:
            return
        self._lag_refreshed = now
        with contextlib.suppress(Exception):
            info = await psub.consumer_info()  # type: ignore[attr-defined]
            CONSUMER_LAG.labels(*self._labels).set(info.num_pending)

    async def _process(self, msg: Msg) -> float | None:
        """Apply one message; the retry delay when it was handed back for a retry."""
        headers = msg.headers or {}
        delivery = msg.metadata.num_delivered
        with tracer.start_as_current_span(
            f"{msg.subject} process",
            context=extract_trace_context(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self.durable,
                "messaging.message.id": headers.get(HEADER_EVENT_ID, ""),
                "messaging.delivery_count": delivery,
            },
        ) as span:
            if delivery > 1:
                CONSUMER_REDELIVERIES.labels(*self._labels).inc()
            try:
                event = _decode(msg, delivery)
            except (UnknownEventError, DecodeError, ValueError) as exc:
                span.set_status(Status(StatusCode.ERROR, "undecodable event"))
                await self._dead_letter(msg, f"undecodable: {exc}")
                return None
            started = time.perf_counter()
            try:
                applied = await self._apply(event)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return await self._handle_failure(msg, event, exc)
            CONSUMER_HANDLER_LATENCY.labels(*self._labels).observe(time.perf_counter() - started)
            CONSUMER_PROCESSED.labels(*self._labels, "applied" if applied else "duplicate").inc()
            await self._acknowledge(msg)
            return None

    def _batchable(self, messages: Sequence[Msg]) -> bool:
        return (
            self._sub.batch_handler is not None
            and len(messages) > 1
            and all(m.metadata.num_delivered == 1 for m in messages)
        )

    async def _process_batch(self, messages: Sequence[Msg]) -> bool:
        """Apply and ack a whole batch; False leaves it to the one-by-one path."""
        try:
            events = [_decode(msg, 1) for msg in messages]
        except (UnknownEventError, DecodeError, ValueError):
            return False  # the one-by-one path dead-letters the undecodable message
        with tracer.start_as_current_span(
            f"{self.durable} batch",
            kind=SpanKind.CONSUMER,
            links=[
                trace.Link(trace.get_current_span(e.trace_context).get_span_context())
                for e in events
            ],
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.durable,
                "messaging.batch.message_count": len(events),
            },
        ):
            started = time.perf_counter()
            try:
                applied = await self._apply_batch(events)
            except Exception as exc:
                log.warning(
                    "batch failed; applying its events one by one",
                    consumer=self.durable,
                    size=len(events),
                    error=f"{type(exc).__name__}: {exc}"[:MAX_REASON_LENGTH],
                )
                CONSUMER_BATCHES.labels(*self._labels, "failed").inc()
                return False
        CONSUMER_HANDLER_LATENCY.labels(*self._labels).observe(time.perf_counter() - started)
        CONSUMER_BATCHES.labels(*self._labels, "applied").inc()
        CONSUMER_PROCESSED.labels(*self._labels, "applied").inc(applied)
        CONSUMER_PROCESSED.labels(*self._labels, "duplicate").inc(len(events) - applied)
        for msg in messages:
            await self._acknowledge(msg)
        return True

    async def _apply_batch(self, events: Sequence[InboundEvent]) -> int:
        """Claim every inbox row in one statement; apply the fresh events once each."""
        assert self._sub.batch_handler is not None
        async with self._uow() as uow:
            fresh = await _claim(uow, self.durable, events)
            todo: list[InboundEvent] = []
            for event in events:  # the same event twice in one fetch applies once
                if event.event_id in fresh:
                    fresh.discard(event.event_id)
                    todo.append(event)
            if todo:
                await self._sub.batch_handler(todo, uow)
            await uow.commit()
            return len(todo)

    async def _apply(self, event: InboundEvent) -> bool:
        """Apply once: False when the inbox shows the event was already applied."""
        async with self._uow() as uow:
            if not await _claim(uow, self.durable, [event]):
                return False
            await self._sub.handler(event, uow)
            await uow.commit()
            return True

    async def _handle_failure(self, msg: Msg, event: InboundEvent, exc: Exception) -> float | None:
        """Retry with backoff; park after max_deliver attempts unless the database is down.

        An unreachable database says nothing about the event, so those failures retry
        for as long as it takes and never send a good event to the dead-letter stream.
        Returns the retry delay, or None when the event was parked.
        """
        reason = f"{type(exc).__name__}: {exc}"
        transient = is_transient_db_error(exc)
        if isinstance(exc, PermanentError) or (
            not transient and event.delivery >= self._sub.max_deliver
        ):
            await self._dead_letter(msg, reason)
            return None
        delay = self._sub.retry_delay(event.delivery)
        if transient:  # come back soon: the event is fine, the database was away
            delay = min(delay, TRANSIENT_RETRY_CAP_SECONDS)
        log.warning(
            "event handler failed; will retry",
            consumer=self.durable,
            event_id=str(event.event_id),
            delivery=event.delivery,
            retry_in=delay,
            error=reason[:MAX_REASON_LENGTH],
        )
        CONSUMER_PROCESSED.labels(*self._labels, "retried").inc()
        # An ordered consumer waits out the delay itself: a delayed nak would let newer
        # events be delivered first.
        await msg.nak(delay=None if self._sub.ordered else delay)
        return delay

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        headers = dict(msg.headers or {})
        original_id = (
            headers.get(HEADER_EVENT_ID)
            or headers.get(HEADER_MSG_ID)
            or f"seq-{msg.metadata.sequence.stream}"
        )
        headers.update(
            {
                HEADER_MSG_ID: f"{self.durable}:{original_id}",
                HEADER_DL_REASON: reason[:MAX_REASON_LENGTH],
                HEADER_DL_CONSUMER: f"{self._service}/{self.durable}",
                HEADER_DL_SUBJECT: msg.subject,
                HEADER_DL_DELIVERIES: str(msg.metadata.num_delivered),
                HEADER_DL_SEQUENCE: str(msg.metadata.sequence.stream),
            }
        )
        inject_trace_headers(headers)
        await self._js.publish(
            deadletter_subject(self._service, self.durable), msg.data, headers=headers
        )
        log.error(
            "event dead-lettered",
            consumer=self.durable,
            event_id=original_id,
            subject=msg.subject,
            deliveries=msg.metadata.num_delivered,
            reason=reason[:MAX_REASON_LENGTH],
        )
        CONSUMER_PROCESSED.labels(*self._labels, "dead_lettered").inc()
        await msg.term()

    async def _acknowledge(self, msg: Msg) -> None:
        await msg.ack()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


# A text statement, so it is prepared once per connection: SQLAlchemy never caches the
# compiled form of the PostgreSQL INSERT ... ON CONFLICT construct, and this runs for
# every event every consumer applies.
_CLAIM = sa.text(
    "INSERT INTO inbox_events (consumer, event_id, subject)"
    " SELECT :consumer, e.event_id, e.subject"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS text[])) AS e(event_id, subject)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


async def _claim(uow: UnitOfWork, consumer: str, events: Sequence[InboundEvent]) -> set[uuid.UUID]:
    """Inbox rows for the events not applied before; the ids that were new."""
    claimed = await uow.session.execute(
        _CLAIM,
        {
            "consumer": consumer,
            "ids": [e.event_id for e in events],
            "subjects": [e.subject for e in events],
        },
    )
    return {row[0] for row in claimed}


async def _release(messages: Sequence[Msg]) -> None:
    """Hand unprocessed messages straight back for redelivery (shutdown path)."""
    for msg in messages:
        with contextlib.suppress(Exception):
            await msg.nak()


def _decode(msg: Msg, delivery: int) -> InboundEvent:
    headers = msg.headers or {}
    event_type = headers.get(HEADER_EVENT_TYPE)
    if not event_type:
        raise UnknownEventError(f"missing {HEADER_EVENT_TYPE} header")
    raw_id = headers.get(HEADER_EVENT_ID) or headers.get(HEADER_MSG_ID)
    if not raw_id:
        raise ValueError(f"missing {HEADER_EVENT_ID} header")
    occurred = headers.get(HEADER_OCCURRED_AT)
    return InboundEvent(
        event_id=uuid.UUID(raw_id),
        subject=msg.subject,
        message=decode_event(event_type, msg.data),
        occurred_at=datetime.fromisoformat(occurred).astimezone(UTC) if occurred else None,
        delivery=delivery,
        trace_context=extract_trace_context(headers),
    )
