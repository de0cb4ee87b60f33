"""Outbox: state and events commit together; the relay publishes in commit order, waits
out a NATS outage and delivers every event exactly once afterwards."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NATS

from pipworks.events.v1 import identity_pb2
from pipworks_platform.consumer import EventConsumer, Subscription
from pipworks_platform.db import UnitOfWorkFactory, libpq_dsn
from pipworks_platform.events import HEADER_EVENT_TYPE, HEADER_MSG_ID
from pipworks_platform.metrics import OUTBOX_BACKLOG
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.streams import ensure_stream, service_stream
from tests.helpers import eventually
from tests.platform.sample.service import CONSUMER, SERVICE, notes, recorder

SUBJECT = "pipworks.identity.v1.user.registered"


async def _scalar(url: str, sql: str) -> object:
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _add_note(uow_factory: UnitOfWorkFactory, user_id: str | None = None) -> str:
    note_id = user_id or str(uuid.uuid4())
    async with uow_factory() as uow:
        await uow.session.execute(sa.insert(notes).values(id=uuid.UUID(note_id), text="hi"))
        uow.emit(identity_pb2.UserRegistered(user_id=note_id, country_code="GB"))
        await uow.commit()
    return note_id


async def test_state_and_event_commit_together_or_not_at_all(sample_db, uow_factory):
    with pytest.raises(RuntimeError, match="boom"):
        async with uow_factory() as uow:
            await uow.session.execute(sa.insert(notes).values(id=uuid.uuid4(), text="lost"))
            uow.emit(identity_pb2.UserRegistered(user_id="u-lost"))
            await uow.session.flush()
            raise RuntimeError("boom")
    assert await _scalar(sample_db, "SELECT count(*) FROM notes") == 0
    assert await _scalar(sample_db, "SELECT count(*) FROM outbox_events") == 0

    await _add_note(uow_factory)
    assert await _scalar(sample_db, "SELECT count(*) FROM notes") == 1
    assert await _scalar(sample_db, "SELECT count(*) FROM outbox_events") == 1
    assert await _scalar(sample_db, "SELECT subject FROM outbox_events") == SUBJECT


async def test_after_commit_callbacks_run_only_when_the_transaction_commits(uow_factory):
    ran: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        async with uow_factory() as uow:
            uow.after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("boom")
    async with uow_factory() as uow:
        uow.after_commit(lambda: ran.append("first"))
        await uow.session.execute(sa.insert(notes).values(id=uuid.uuid4(), text="kept"))
        assert ran == []
        await uow.commit()
        uow.after_commit(lambda: ran.append("second"))
        await uow.rollback()
        await uow.commit()
    assert ran == ["first"]


async def test_relay_publishes_in_commit_order_with_event_id_as_msg_id(
    sample_db, uow_factory, nats_client: NATS
):
    written = []
    for _ in range(5):  # concurrent writers: commit order decides the outbox order
        written += await asyncio.gather(*(_add_note(uow_factory) for _ in range(10)))
    relay = OutboxRelay(service=SERVICE, database_url=sample_db, nats=nats_client)
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    task = asyncio.create_task(relay.run())
    try:
        await eventually(
            lambda: _scalar(
                sample_db, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
            ),
            until=lambda n: n == 0,
        )
    finally:
        relay.stop()
        await task

    conn = await asyncpg.connect(libpq_dsn(sample_db))
    rows = await conn.fetch("SELECT event_id, payload FROM outbox_events ORDER BY id")
    await conn.close()
    sub = await js.pull_subscribe(SUBJECT, durable="order-check")
    messages = await sub.fetch(len(rows), timeout=5)
    assert [m.headers[HEADER_MSG_ID] for m in messages] == [str(r["event_id"]) for r in rows]
    assert [m.data for m in messages] == [bytes(r["payload"]) for r in rows]
    assert {m.headers[HEADER_EVENT_TYPE] for m in messages} == {"pipworks.events.v1.UserRegistered"}
    decoded = [identity_pb2.UserRegistered.FromString(m.data).user_id for m in messages]
    assert sorted(decoded) == sorted(written)


async def test_events_wait_for_nats_and_then_arrive_exactly_once(
    sample_db, uow_factory, nats_server, nats_url
):
    import nats as nats_py

    nc = await nats_py.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    relay = OutboxRelay(
        service=SERVICE, database_url=sample_db, nats=nc, poll_interval=0.2, publish_timeout=1
    )
    consumer = EventConsumer(
        service=SERVICE,
        nats=nc,
        unit_of_work=uow_factory,
        subscription=Subscription(
            durable=CONSUMER, subjects=[SUBJECT], handler=recorder(CONSUMER), ack_wait=2
        ),
        fetch_timeout=0.5,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        await _add_note(uow_factory)
        await eventually(lambda: _scalar(sample_db, "SELECT count(*) FROM applied_events"))

        nats_server.stop()
        written = [await _add_note(uow_factory) for _ in range(20)]
        backlog = await eventually(
            lambda: _scalar(
                sample_db, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
            ),
            until=lambda n: n == 20,
        )
        assert backlog == 20
        await asyncio.sleep(1.5)  # several relay passes fail while NATS is away
        assert (
            await _scalar(
                sample_db, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
            )
            == 20
        )
        assert OUTBOX_BACKLOG.labels(SERVICE)._value.get() == 20

        nats_server.start()
        await eventually(
            lambda: _scalar(sample_db, "SELECT count(*) FROM applied_events"),
            until=lambda n: n >= 21,
            timeout=30,
        )
        await asyncio.sleep(1.0)  # any duplicate would show up by now
    finally:
        relay.stop()
        consumer.stop()
        await asyncio.gather(*tasks)
        await nc.close()

    conn = await asyncpg.connect(libpq_dsn(sample_db))
    applied = await conn.fetch("SELECT user_id FROM applied_events")
    await conn.close()
    applied_ids = [r["user_id"] for r in applied]
    assert len(applied_ids) == 21
    assert len(set(applied_ids)) == 21
    assert set(written) <= set(applied_ids)

    nc = await nats_py.connect(nats_url)
    info = await nc.jetstream().stream_info(service_stream(SERVICE).name)
    await nc.close()
    assert info.state.messages == 21  # duplicates dropped by Nats-Msg-Id


async def test_only_one_relay_is_active(sample_db, nats_client: NATS):
    first = OutboxRelay(
        service=SERVICE, database_url=sample_db, nats=nats_client, poll_interval=0.1
    )
    second = OutboxRelay(
        service=SERVICE, database_url=sample_db, nats=nats_client, poll_interval=0.1
    )
    await ensure_stream(nats_client.jetstream(), service_stream(SERVICE))
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        await eventually(lambda: _async(first.is_leader or second.is_leader))
        await asyncio.sleep(0.5)
        assert first.is_leader != second.is_leader
        leader, standby = (first, second) if first.is_leader else (second, first)
        leader.stop()
        await eventually(lambda: _async(standby.is_leader), timeout=5)
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*tasks)


async def _async(value: object) -> object:
    return value
