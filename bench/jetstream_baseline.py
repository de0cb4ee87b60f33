"""JetStream: the outbox relay and EventConsumer beside raw nats-py publish and pull-consume.

Raw baselines: ``js.publish`` awaiting each ack, pipelined ``js.publish_async``, and a
durable pull consumer fetching batches and acking each message. Platform figures: events
written with ``UnitOfWork`` (one per transaction from several writers, and batches per
transaction) until the ``OutboxRelay`` has marked the last one published; the relay
draining a pre-filled outbox; ``EventConsumer`` applying a pre-filled stream with its
inbox row; and commit-to-applied latency at a steady rate beside raw publish-to-receive.
Every message is a ``UserRegistered`` carrying the headers the relay sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench._harness import (
    BenchContext,
    BenchError,
    LatencyClock,
    Result,
    delete_streams,
    latency,
    note,
    paced,
    patience,
    throughput,
    wait_until,
    warm_then_measure,
)
from bench._jetstream import (
    FETCH_BATCH,
    FETCH_TIMEOUT,
    PRODUCER,
    STREAM,
    SUBJECT,
    describe_message,
    expect_messages,
    fetch,
    fresh_stream,
    publish_all,
    pull_subscription,
    user_registered,
    wire_messages,
)
from pipworks.events.v1 import identity_pb2
from pipworks_platform.consumer import (
    EventConsumer,
    Handler,
    InboundEvent,
    PermanentError,
    Subscription,
)
from pipworks_platform.db import UnitOfWork, UnitOfWorkFactory, create_engine, libpq_dsn
from pipworks_platform.db import session_factory as make_session_factory
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import HEADER_MSG_ID
from pipworks_platform.outbox import OutboxRelay

CONSUMER_SERVICE = "bench"

MESSAGES = 20_000  # raw phases, batched writes and the relay drain
TRANSACTIONS = 5_000  # one-event transactions and the consumer: each costs a commit
LATENCY_EVENTS = 400  # per latency phase, at LATENCY_RATE
LATENCY_RATE = 100.0  # events per second, well below saturation
WRITERS = 8
EVENTS_PER_TRANSACTION = 100
STOP_SECONDS = 15.0  # for a relay or consumer asked to stop
DB_POLL = 0.01  # seconds between progress queries, light enough not to compete

APPLIED = sa.Table(
    "bench_applied",
    sa.MetaData(),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("country_code", sa.Text, nullable=False),
)
_CREATE_APPLIED = """
CREATE TABLE IF NOT EXISTS bench_applied (
    user_id text PRIMARY KEY, country_code text NOT NULL
)"""
_RESET = "TRUNCATE outbox_events, inbox_events, bench_applied RESTART IDENTITY"
_UNPUBLISHED = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
_APPLIED_COUNT = "SELECT count(*) FROM inbox_events"


# -- the database ------------------------------------------------------------------


class _StampingUnitOfWork(UnitOfWork):
    """A unit of work that runs callbacks once its transaction has committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, service: str) -> None:
        super().__init__(sessions, service=service)
        self.after_commit: list[Callable[[], None]] = []

    async def commit(self) -> None:
        await super().commit()
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            callback()


class _StampingUnitOfWorkFactory(UnitOfWorkFactory):
    """Hands out :class:`_StampingUnitOfWork`, so a handler can time its commit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, service: str) -> None:
        super().__init__(sessions, service=service)
        self._stamping_sessions = sessions

    def __call__(self) -> _StampingUnitOfWork:
        return _StampingUnitOfWork(self._stamping_sessions, service=self.service)


@dataclass
class Database:
    """The bench database: platform tables, units of work, an admin connection for progress."""

    url: str
    engine: AsyncEngine
    admin: asyncpg.Connection
    producer_uow: UnitOfWorkFactory
    consumer_uow: UnitOfWorkFactory
    stamping_uow: _StampingUnitOfWorkFactory

    async def reset(self) -> None:
        await self.admin.execute(_RESET)

    async def unpublished(self) -> int:
        return int(await self.admin.fetchval(_UNPUBLISHED))

    async def applied(self) -> int:
        return int(await self.admin.fetchval(_APPLIED_COUNT))


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    """Migrate ``url`` to the platform head, add the handler's table, open the engine."""
    with TemporaryDirectory(prefix="pipworks-bench-versions-") as versions:
        await upgrade_to_head(url, Path(versions), service="bench")
    admin = await asyncpg.connect(libpq_dsn(url))
    engine = create_engine(url, application_name="bench", pool_size=WRITERS)
    try:
        await admin.execute(_CREATE_APPLIED)
        sessions = make_session_factory(engine)
        yield Database(
            url=url,
            engine=engine,
            admin=admin,
            producer_uow=UnitOfWorkFactory(sessions, service=PRODUCER),
            consumer_uow=UnitOfWorkFactory(sessions, service=CONSUMER_SERVICE),
            stamping_uow=_StampingUnitOfWorkFactory(sessions, service=CONSUMER_SERVICE),
        )
    finally:
        await admin.close()
        await engine.dispose()


async def write_events(
    uow: UnitOfWorkFactory,
    events: Sequence[identity_pb2.UserRegistered],
    *,
    per_transaction: int,
    writers: int,
) -> None:
    """Emit ``events`` through units of work, ``per_transaction`` at a time, concurrently."""
    batches = iter(
        [events[i : i + per_transaction] for i in range(0, len(events), per_transaction)]
    )

    async def writer() -> None:
        for batch in batches:  # shared iterator: each batch goes to exactly one writer
            async with uow() as unit:
                for event in batch:
                    unit.emit(event)
                await unit.commit()

    await asyncio.gather(*(writer() for _ in range(writers)))


def apply_user(clock: LatencyClock | None = None) -> Handler:
    """The consumer's handler: one small row per event (plus, with a clock, a commit stamp)."""

    async def handle(event: InboundEvent, uow: UnitOfWork) -> None:
        message = event.message
        if not isinstance(message, identity_pb2.UserRegistered):
            raise PermanentError(f"expected UserRegistered, got {type(message).__name__}")
        await uow.session.execute(
            sa.insert(APPLIED).values(user_id=message.user_id, country_code=message.country_code)
        )
        if clock is not None and isinstance(uow, _StampingUnitOfWork):
            key = str(event.event_id)
            uow.after_commit.append(lambda: clock.arrived(key))

    return handle


# -- running platform components ---------------------------------------------------


async def _stop(task: asyncio.Task[None]) -> None:
    """Wait for a component asked to stop; cancel it if it does not."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, STOP_SECONDS)


def _alive(task: asyncio.Task[None], name: str) -> None:
    if task.done():
        task.result()  # re-raises what killed it
        raise BenchError(f"{name} stopped on its own")


@asynccontextmanager
async def running_relay(db: Database, nc: NATS) -> AsyncIterator[OutboxRelay]:
    """An ``OutboxRelay`` for the producer, yielded once it holds the leader lock."""
    relay = OutboxRelay(service=PRODUCER, database_url=db.url, nats=nc)
    task = asyncio.create_task(relay.run(), name="outbox-relay")

    async def leading() -> bool:
        _alive(task, "the outbox relay")
        return relay.is_leader

    try:
        await wait_until(leading, within=30, what="the outbox relay to take the lead")
        yield relay
    finally:
        relay.stop()
        await _stop(task)


@asynccontextmanager
async def running_consumer(
    nc: NATS, uow: UnitOfWorkFactory, handler: Handler, durable: str
) -> AsyncIterator[EventConsumer]:
    """An ``EventConsumer`` on the producer's stream, yielded once its consumer exists."""
    consumer = EventConsumer(
        service=CONSUMER_SERVICE,
        nats=nc,
        unit_of_work=uow,
        subscription=Subscription(
            durable=durable, subjects=[SUBJECT], handler=handler, batch_size=FETCH_BATCH
        ),
        fetch_timeout=FETCH_TIMEOUT,
    )
    task = asyncio.create_task(consumer.run(), name=f"consumer-{durable}")
    js = nc.jetstream()

    async def subscribed() -> bool:
        _alive(task, "the event consumer")
        try:
            await js.consumer_info(STREAM.name, durable)
        except NotFoundError:
            return False
        return True

    try:
        await wait_until(subscribed, within=30, what=f"consumer {durable}")
        yield consumer
    finally:
        consumer.stop()
        await _stop(task)


# -- the phases --------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxTiming:
    committed: float  # seconds until the writers' last commit
    published: float  # seconds until the relay had marked the last row published


class Phases:
    """Each phase sets up its own stream and tables, then returns what it timed."""

    def __init__(self, nc: NATS, db: Database) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.db = db

    # raw JetStream

    async def publish_sequential(self, count: int) -> float:
        messages = wire_messages(count)
        await fresh_stream(self.js)
        start = time.perf_counter()
        for wire in messages:
            await self.js.publish(SUBJECT, wire.payload, headers=wire.headers)
        elapsed = time.perf_counter() - start
        await expect_messages(self.js, count)
        return elapsed

    async def publish_pipelined(self, count: int) -> float:
        messages = wire_messages(count)
        await fresh_stream(self.js)
        start = time.perf_counter()
        await publish_all(self.js, messages)
        elapsed = time.perf_counter() - start
        await expect_messages(self.js, count)
        return elapsed

    async def pull_consume(self, count: int) -> float:
        await fresh_stream(self.js)
        await publish_all(self.js, wire_messages(count))
        psub = await pull_subscription(self.js, "bench-raw")
        deadline = time.perf_counter() + patience(count)
        received = 0
        start = time.perf_counter()
        while received < count:
            if time.perf_counter() > deadline:
                raise BenchError(f"raw consumer got {received} of {count} messages")
            for msg in await fetch(psub, FETCH_BATCH):
                await msg.ack()
                received += 1
        await self.nc.flush()
        elapsed = time.perf_counter() - start
        await psub.unsubscribe()
        return elapsed

    # the outbox

    async def outbox_end_to_end(self, count: int, per_transaction: int) -> OutboxTiming:
        events = [user_registered(index) for index in range(count)]
        await self.db.reset()
        await fresh_stream(self.js)
        async with running_relay(self.db, self.nc):
            start = time.perf_counter()
            await write_events(
                self.db.producer_uow, events, per_transaction=per_transaction, writers=WRITERS
            )
            committed = time.perf_counter() - start
            await self._wait_published(count)
            published = time.perf_counter() - start
        await expect_messages(self.js, count)
        return OutboxTiming(committed, published)

    async def outbox_one_per_transaction(self, count: int) -> OutboxTiming:
        return await self.outbox_end_to_end(count, 1)

    async def outbox_batched(self, count: int) -> OutboxTiming:
        return await self.outbox_end_to_end(count, EVENTS_PER_TRANSACTION)

    async def relay_drain(self, count: int) -> float:
        events = [user_registered(index) for index in range(count)]
        await self.db.reset()
        await fresh_stream(self.js)
        await write_events(
            self.db.producer_uow, events, per_transaction=EVENTS_PER_TRANSACTION, writers=WRITERS
        )
        start = time.perf_counter()
        async with running_relay(self.db, self.nc):
            await self._wait_published(count)
            elapsed = time.perf_counter() - start
        await expect_messages(self.js, count)
        return elapsed

    async def _wait_published(self, count: int) -> None:
        async def drained() -> bool:
            return await self.db.unpublished() == 0

        await wait_until(drained, within=patience(count), what="the relay to publish", poll=DB_POLL)

    # the consumer

    async def consume_apply(self, count: int) -> float:
        await self.db.reset()
        await fresh_stream(self.js)
        await publish_all(self.js, wire_messages(count))

        async def applied() -> bool:
            return await self.db.applied() >= count

        start = time.perf_counter()
        async with running_consumer(self.nc, self.db.consumer_uow, apply_user(), "bench-consumer"):
            await wait_until(
                applied, within=patience(count), what="the consumer to apply", poll=DB_POLL
            )
            elapsed = time.perf_counter() - start
        return elapsed

    # latency at a steady rate

    async def platform_latency(self, count: int) -> list[float]:
        """Just before the producer's commit → just after the consumer's commit."""
        events = [user_registered(index) for index in range(count)]
        await self.db.reset()
        await fresh_stream(self.js)
        clock = LatencyClock()

        async def produce(index: int) -> None:
            async with self.db.producer_uow() as unit:
                outgoing = unit.emit(events[index])
                clock.sent(str(outgoing.event_id))
                await unit.commit()

        async with (
            running_relay(self.db, self.nc),
            running_consumer(self.nc, self.db.stamping_uow, apply_user(clock), "bench-latency"),
        ):
            await paced(count, LATENCY_RATE, produce)
            await self._wait_arrived(clock, count)
        return clock.latencies()

    async def raw_latency(self, count: int, batch: int) -> list[float]:
        """Just before ``js.publish`` → the raw pull consumer has the message."""
        messages = wire_messages(count)
        await fresh_stream(self.js)
        clock = LatencyClock()
        psub = await pull_subscription(self.js, "bench-raw-latency")

        async def consume() -> None:
            while True:
                for msg in await fetch(psub, batch):
                    clock.arrived(msg.headers[HEADER_MSG_ID])
                    await msg.ack()

        async def produce(index: int) -> None:
            clock.sent(messages[index].event_id)
            await self.js.publish(SUBJECT, messages[index].payload, headers=messages[index].headers)

        consumer = asyncio.create_task(consume(), name="raw-latency-consumer")
        try:
            await paced(count, LATENCY_RATE, produce)
            await self._wait_arrived(clock, count, consumer)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            await psub.unsubscribe()
        return clock.latencies()

    async def raw_latency_single(self, count: int) -> list[float]:
        return await self.raw_latency(count, 1)

    async def raw_latency_batched(self, count: int) -> list[float]:
        return await self.raw_latency(count, FETCH_BATCH)

    async def _wait_arrived(
        self, clock: LatencyClock, count: int, worker: asyncio.Task[None] | None = None
    ) -> None:
        async def complete() -> bool:
            if worker is not None:
                _alive(worker, "the raw consumer")
            return clock.count_arrived() >= count

        await wait_until(complete, within=patience(count), what=f"{count} events to arrive")


# -- the bench ---------------------------------------------------------------------


async def run(ctx: BenchContext) -> list[Result]:
    note(describe_message())
    note(
        f"{WRITERS} concurrent writers; consumer fetch({FETCH_BATCH}, {FETCH_TIMEOUT:g}s); "
        f"latency at {LATENCY_RATE:g} events/s"
    )
    async with (
        ctx.nats_client() as nc,
        ctx.database("bench_jetstream") as url,
        open_database(url) as db,
    ):
        try:
            return await measure(ctx, Phases(nc, db))
        finally:
            await delete_streams(nc.jetstream())


async def measure(ctx: BenchContext, phases: Phases) -> list[Result]:
    """Every phase, warm-up first; raw baselines and platform figures from the same run."""
    many = ctx.scaled(MESSAGES)
    single = ctx.scaled(TRANSACTIONS)
    sampled = ctx.scaled(LATENCY_EVENTS)
    writers = f"{WRITERS} writers"

    seq = await warm_then_measure(phases.publish_sequential, many)
    pipe = await warm_then_measure(phases.publish_pipelined, many)
    pull = await warm_then_measure(phases.pull_consume, many)
    one = await warm_then_measure(phases.outbox_one_per_transaction, single)
    batched = await warm_then_measure(phases.outbox_batched, many)
    drain = await warm_then_measure(phases.relay_drain, many)
    apply = await warm_then_measure(phases.consume_apply, single)
    raw_one = await warm_then_measure(phases.raw_latency_single, sampled)
    raw_batch = await warm_then_measure(phases.raw_latency_batched, sampled)
    e2e = await warm_then_measure(phases.platform_latency, sampled)

    return [
        throughput("seq", "raw: js.publish, await each ack", many, seq),
        throughput("pipe", "raw: js.publish_async pipelined", many, pipe),
        throughput("pull", f"raw: pull fetch({FETCH_BATCH}) + ack each", many, pull),
        throughput(
            "one_commit",
            f"outbox: commit only, 1 event/tx, {writers}",
            single,
            one.committed,
            baseline="seq",
        ),
        throughput(
            "one_e2e",
            f"outbox: commit → published, 1 event/tx, {writers}",
            single,
            one.published,
            baseline="seq",
        ),
        throughput(
            "batch_e2e",
            f"outbox: commit → published, {EVENTS_PER_TRANSACTION} events/tx, {writers}",
            many,
            batched.published,
            baseline="pipe",
        ),
        throughput(
            "drain", "outbox relay: drain a pre-filled outbox", many, drain, baseline="pipe"
        ),
        throughput(
            "apply", "EventConsumer: apply + inbox, 1 tx/event", single, apply, baseline="pull"
        ),
        latency("raw_one", "raw: publish → pull fetch(1)", raw_one),
        latency(
            "raw_batch", f"raw: publish → pull fetch({FETCH_BATCH}, {FETCH_TIMEOUT:g}s)", raw_batch
        ),
        latency("e2e", "platform: commit → relay → consumer committed", e2e, baseline="raw_one"),
    ]
