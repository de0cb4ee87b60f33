"""Ordered subscriptions apply events in stream order across crashes and failed attempts:
nothing a dead process left unsettled, and nothing handed back for a retry, is overtaken
by newer events."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
from nats.aio.client import Client as NATS

from pipworks_platform.consumer import EventConsumer, InboundEvent
from pipworks_platform.db import UnitOfWork, libpq_dsn
from pipworks_platform.leader import LeaderLock
from pipworks_platform.streams import ensure_stream, service_stream
from tests.helpers import eventually
from tests.platform.integration.test_consumer import _consumer, _publish
from tests.platform.sample.service import CONSUMER, SERVICE, recorder

USERS = [f"user-{i}" for i in range(10)]


async def _applied_in_order(url: str) -> list[str]:
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        rows = await conn.fetch("SELECT user_id FROM applied_events ORDER BY id")
        return [r["user_id"] for r in rows]
    finally:
        await conn.close()


async def _run_until_applied(consumer: EventConsumer, url: str, count: int) -> list[str]:
    task = asyncio.create_task(consumer.run())
    try:
        return await eventually(
            lambda: _applied_in_order(url), until=lambda a: len(a) >= count, timeout=20
        )
    finally:
        consumer.stop()
        await task


async def test_a_restart_replays_what_a_crashed_process_left_unsettled_first(
    sample_db, uow_factory, nats_client: NATS
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    for user in USERS:
        await _publish(js, user)
    stuck = asyncio.Event()

    async def hangs(event: InboundEvent, uow: UnitOfWork) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the process dies here, its fetch never settled

    crashed = _consumer(nats_client, uow_factory, hangs, batch_size=3, ordered=True)
    task = asyncio.create_task(crashed.run())
    await asyncio.wait_for(stuck.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    info = await js.consumer_info(service_stream(SERVICE).name, CONSUMER)
    assert info.num_ack_pending == 3  # redelivered only after ack_wait (30 s)

    started = time.monotonic()
    restarted = _consumer(nats_client, uow_factory, recorder(CONSUMER), ordered=True)
    applied = await _run_until_applied(restarted, sample_db, len(USERS))
    assert applied == USERS
    assert time.monotonic() - started < 15  # not after the unsettled deliveries' ack_wait


async def test_a_failed_attempt_is_retried_before_any_later_event(
    sample_db, uow_factory, nats_client: NATS
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    for user in USERS:
        await _publish(js, user)
    failed: list[str] = []
    record = recorder(CONSUMER)

    async def fails_once(event: InboundEvent, uow: UnitOfWork) -> None:
        user = event.message.user_id
        if user in ("user-2", "user-6") and user not in failed:
            failed.append(user)
            raise RuntimeError("the first attempt fails")
        await record(event, uow)

    consumer = _consumer(
        nats_client, uow_factory, fails_once, batch_size=10, backoff=(0.3,), ordered=True
    )
    applied = await _run_until_applied(consumer, sample_db, len(USERS))
    assert failed == ["user-2", "user-6"]
    assert applied == USERS


async def test_among_replicas_only_the_leader_consumes_and_a_standby_takes_over(
    sample_db, uow_factory, nats_client: NATS
):
    js = nats_client.jetstream()
    await ensure_stream(js, service_stream(SERVICE))
    record = recorder(CONSUMER)
    applied_by: dict[str, list[str]] = {"first": [], "second": []}
    locks: dict[str, LeaderLock] = {}

    def replica(name: str) -> EventConsumer:
        async def handle(event: InboundEvent, uow: UnitOfWork) -> None:
            applied_by[name].append(event.message.user_id)
            await record(event, uow)

        lock = LeaderLock(sample_db, f"{SERVICE}:consumer:{CONSUMER}", poll_interval=0.2)
        locks[name] = lock
        return _consumer(nats_client, uow_factory, handle, leader=lock, ordered=True)

    first, second = replica("first"), replica("second")
    first_task = asyncio.create_task(first.run())
    await eventually(locks["first"].still_held, until=bool, timeout=10)
    second_task = asyncio.create_task(second.run())
    for user in USERS[:5]:
        await _publish(js, user)
    await eventually(lambda: _applied_in_order(sample_db), until=lambda a: len(a) >= 5)
    assert applied_by == {"first": USERS[:5], "second": []}

    first.stop()  # the leader goes away; its lock goes with its connection
    await first_task
    for user in USERS[5:]:
        await _publish(js, user)
    try:
        applied = await eventually(
            lambda: _applied_in_order(sample_db), until=lambda a: len(a) >= len(USERS)
        )
    finally:
        second.stop()
        await second_task
    assert applied == USERS
    assert applied_by == {"first": USERS[:5], "second": USERS[5:]}
