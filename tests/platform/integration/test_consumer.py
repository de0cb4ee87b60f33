"""Consumer: redelivered events apply once (inbox); poison messages are dead-lettered
with their reason after the allowed attempts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from pipworks.events.v1 import identity_pb2
from pipworks_platform.consumer import (
    HEADER_DL_CONSUMER,
    HEADER_DL_DELIVERIES,
    HEADER_DL_REASON,
    EventConsumer,
    PermanentError,
    Subscription,
)
from pipworks_platform.db import libpq_dsn
from pipworks_platform.events import nats_headers
from pipworks_platform.metrics import CONSUMER_PROCESSED
from pipworks_platform.streams import (
    deadletter_stream,
    deadletter_subject,
    ensure_stream,
    service_stream,
)
from tests.helpers import eventually
from tests.platform.sample.service import CONSUMER, SERVICE, recorder

SUBJECT = "pipworks.identity.v1.user.registered"


async def _publish(
    js,
    user_id: str,
    *,
    event_id: str | None = None,
    msg_id: str | None = None,
    event_type: str = "pipworks.events.v1.UserRegistered",
) -> str:
    event_id = event_id or str(uuid.uuid4())
    data = identity_pb2.UserRegistered(user_id=user_id).SerializeToString()
    headers = nats_headers(
        event_id=event_id, event_type=event_type, occurred_at=datetime.now(UTC), extra={}
    )
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    await js.publish(SUBJECT, data, headers=headers)
    return event_id


async def _applied(url: str) -> list[str]:
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        return [r["user_id"] for r in await conn.fetch("SELECT user_id FROM applied_events")]
    finally:
        await conn.close()


async def _consumer_info(js):
    try:
        return await js.consumer_info(service_stream(SERVICE).name, CONSUMER)
    except NotFoundError:
        return None  # not created yet


def _consumer(
    nats_client: NATS, uow_factory, handler, *, leader=None, **subscription
) -> EventConsumer:
    """The sample service's consumer of ``SUBJECT``, polling briskly."""
    return EventConsumer(
        service=SERVICE,
        nats=nats_client,
        unit_of_work=uow_factory,
        subscription=Subscription(
            durable=CONSUMER, subjects=[SUBJECT], handler=handler, **subscription
        ),
        fetch_timeout=0.3,
        leader=leader,
    )


class AckDroppingConsumer(EventConsumer):
    """Loses the first acknowledgement of every message, as a broken network would."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dropped: set[int] = set()

    async def _acknowledge(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        if sequence not in self.dropped:
            self.dropped.add(sequence)
            return
        await super()._acknowledge(msg)


async def test_lost_ack_redelivers_but_applies_once(sample_db, uow_factory, nats_client: NATS):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    users = [f"user-{i}" for i in range(5)]
    for user in users:
        await _publish(js, user)
    consumer = AckDroppingConsumer(
        service=SERVICE,
        nats=nats_client,
        unit_of_work=uow_factory,
        subscription=Subscription(
            durable=CONSUMER, subjects=[SUBJECT], handler=recorder(CONSUMER), ack_wait=1
        ),
        fetch_timeout=0.3,
    )
    task = asyncio.create_task(consumer.run())
    try:
        info = await eventually(
            lambda: _consumer_info(js),
            until=lambda i: (
                i is not None
                and i.num_ack_pending == 0
                and i.num_pending == 0
                and i.delivered.consumer_seq >= 10
            ),
            timeout=20,
        )
    finally:
        consumer.stop()
        await task
    assert info.delivered.consumer_seq >= 10  # every message came at least twice
    assert len(consumer.dropped) == 5
    assert sorted(await _applied(sample_db)) == users


async def test_resent_event_past_the_duplicate_window_applies_once(
    sample_db, uow_factory, nats_client
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    event_id = await _publish(js, "u-1")
    # A resend that JetStream no longer de-duplicates: new Nats-Msg-Id, same event id.
    await _publish(js, "u-1", event_id=event_id, msg_id=f"resend-{event_id}")
    consumer = _consumer(nats_client, uow_factory, handler=recorder(CONSUMER))
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(
            lambda: _consumer_info(js),
            until=lambda i: (
                i is not None
                and i.num_ack_pending == 0
                and i.num_pending == 0
                and i.delivered.stream_seq == 2
            ),
        )
    finally:
        consumer.stop()
        await task
    assert await _applied(sample_db) == ["u-1"]


def _failing_handler(calls: list[str]):
    async def handle(event, uow) -> None:
        calls.append(event.message.user_id)
        raise ValueError("rate table missing for GB")

    return handle


async def _deadletters(js, count: int):
    await ensure_stream(js, deadletter_stream(), update=False)
    sub = await js.pull_subscribe(deadletter_subject(SERVICE, CONSUMER), durable="dlq-reader")
    return await sub.fetch(count, timeout=10)


async def test_poison_event_is_dead_lettered_after_max_deliver(sample_db, uow_factory, nats_client):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    event_id = await _publish(js, "poison")
    good_id = await _publish(js, "fine")
    calls: list[str] = []

    async def handler(event, uow):
        if event.message.user_id == "poison":
            await _failing_handler(calls)(event, uow)
        await recorder(CONSUMER)(event, uow)

    consumer = _consumer(
        nats_client, uow_factory, handler=handler, max_deliver=3, backoff=(0.1, 0.2)
    )
    task = asyncio.create_task(consumer.run())
    try:
        [parked] = await _deadletters(js, 1)
    finally:
        consumer.stop()
        await task
    assert calls == ["poison", "poison", "poison"]
    assert parked.headers[HEADER_DL_REASON] == "ValueError: rate table missing for GB"
    assert parked.headers[HEADER_DL_DELIVERIES] == "3"
    assert parked.headers[HEADER_DL_CONSUMER] == f"{SERVICE}/{CONSUMER}"
    assert parked.headers["Pipworks-Event-Id"] == event_id
    assert identity_pb2.UserRegistered.FromString(parked.data).user_id == "poison"
    assert good_id
    assert await _applied(sample_db) == ["fine"]  # the stream moved on
    info = await js.consumer_info(service_stream(SERVICE).name, CONSUMER)
    assert info.num_ack_pending == 0


async def test_undecodable_event_is_dead_lettered_at_once(sample_db, uow_factory, nats_client):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    await _publish(js, "x", event_type="pipworks.events.v1.NoSuchEvent")
    calls: list[str] = []
    consumer = _consumer(nats_client, uow_factory, handler=_failing_handler(calls))
    task = asyncio.create_task(consumer.run())
    try:
        [parked] = await _deadletters(js, 1)
    finally:
        consumer.stop()
        await task
    assert calls == []
    assert parked.headers[HEADER_DL_DELIVERIES] == "1"
    assert "unknown event type 'pipworks.events.v1.NoSuchEvent'" in parked.headers[HEADER_DL_REASON]


@pytest.mark.slow
async def test_consumer_killed_before_ack_applies_each_event_once(
    sample_db, nats_client, sample_process
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    total = 1500
    users = [f"user-{i}" for i in range(total)]
    for user in users:
        await _publish(js, user)
    first = sample_process()
    await eventually(lambda: _applied(sample_db), until=lambda a: len(a) >= 200, timeout=60)
    first.proc.kill()  # SIGKILL mid-stream: some commits never get their ack
    first.proc.wait()
    assert len(await _applied(sample_db)) < total
    second = sample_process()
    await eventually(lambda: _applied(sample_db), until=lambda a: len(a) >= total, timeout=90)
    await eventually(
        lambda: _consumer_info(js),
        until=lambda i: i is not None and i.num_ack_pending == 0 and i.num_pending == 0,
        timeout=30,
    )
    applied = await _applied(sample_db)
    assert len(applied) == total
    assert sorted(applied) == sorted(users)
    second.stop()
    assert second.proc.returncode == 0


@pytest.mark.slow
async def test_database_outage_delays_events_but_never_dead_letters_them(
    sample_db, uow_factory, nats_client, postgres
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    await ensure_stream(js, deadletter_stream(), update=False)
    consumer = _consumer(
        nats_client, uow_factory, handler=recorder(CONSUMER), max_deliver=2, backoff=(0.2, 0.5)
    )
    retried = CONSUMER_PROCESSED.labels(SERVICE, CONSUMER, "retried")
    retried_before = retried._value.get()
    task = asyncio.create_task(consumer.run())
    try:
        await _publish(js, "before")
        await eventually(lambda: _applied(sample_db), until=lambda a: a == ["before"])
        postgres.stop()
        try:
            users = [f"during-{i}" for i in range(10)]
            for user in users:
                await _publish(js, user)
            await asyncio.sleep(3)  # many more failed attempts than max_deliver
        finally:
            postgres.start()
        applied = await eventually(
            lambda: _applied(sample_db), until=lambda a: len(a) >= 11, timeout=60
        )
    finally:
        consumer.stop()
        await task
    assert sorted(applied) == sorted(["before", *users])
    dead = await js.stream_info(deadletter_stream().name)
    assert dead.state.messages == 0
    assert retried._value.get() - retried_before > 10  # far past max_deliver=2


async def test_a_batch_applies_in_one_call_and_a_poison_event_falls_out_alone(
    sample_db, uow_factory, nats_client
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    twice = await _publish(js, "twice")
    await _publish(js, "twice", event_id=twice, msg_id=f"resend-{twice}")  # same event id
    for user in ("a", "b", "poison", "c"):
        await _publish(js, user)
    batches: list[list[str]] = []

    async def batch_handler(events, uow):
        batches.append([e.message.user_id for e in events])
        for event in events:
            if event.message.user_id == "poison":
                raise PermanentError("poison in the batch")
            await recorder(CONSUMER)(event, uow)

    async def handler(event, uow):
        if event.message.user_id == "poison":
            raise PermanentError("poison on its own")
        await recorder(CONSUMER)(event, uow)

    consumer = _consumer(
        nats_client, uow_factory, handler=handler, batch_handler=batch_handler, batch_size=10
    )
    task = asyncio.create_task(consumer.run())
    try:
        [parked] = await _deadletters(js, 1)
        await eventually(lambda: _applied(sample_db), until=lambda a: len(a) == 4)
    finally:
        consumer.stop()
        await task
    # One call for the whole fetch (the repeated event id only once); it failed, so the
    # events went one by one: the good ones applied, the poison parked with its reason.
    assert batches == [["twice", "a", "b", "poison", "c"]]
    assert sorted(await _applied(sample_db)) == ["a", "b", "c", "twice"]
    assert parked.headers[HEADER_DL_REASON] == "PermanentError: poison on its own"


async def test_a_clean_batch_commits_once_with_every_inbox_row(sample_db, uow_factory, nats_client):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    users = [f"user-{i}" for i in range(6)]
    for user in users:
        await _publish(js, user)
    sizes: list[int] = []

    async def batch_handler(events, uow):
        sizes.append(len(events))
        for event in events:
            assert event.trace_context is not None
            await recorder(CONSUMER)(event, uow)

    consumer = _consumer(
        nats_client,
        uow_factory,
        handler=recorder(CONSUMER),
        batch_handler=batch_handler,
        batch_size=10,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _applied(sample_db), until=lambda a: len(a) == 6)
        info = await eventually(
            lambda: _consumer_info(js), until=lambda i: i is not None and i.num_ack_pending == 0
        )
    finally:
        consumer.stop()
        await task
    assert sum(sizes) == 6
    assert len(sizes) < 6  # fetched together, applied together
    assert sorted(await _applied(sample_db)) == sorted(users)
    assert info.num_pending == 0
