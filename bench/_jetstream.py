"""Raw JetStream, shared by the benches: the messages, stream and pull consumer the
platform figures are compared with, and the raw publish → consume rate.

Every message is a ``UserRegistered`` carrying the headers the outbox relay sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench._harness import BenchError, delete_streams, patience
from pipworks.events.v1 import identity_pb2
from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.streams import ensure_stream, service_stream

# UserRegistered is published by identity: the relay must run as "identity" so its
# subject lands in the PIPWORKS_IDENTITY stream.
PRODUCER = "identity"
STREAM = service_stream(PRODUCER)
PullSubscription = JetStreamContext.PullSubscription
SUBJECT = subject_of(identity_pb2.UserRegistered)
EVENT_TYPE = identity_pb2.UserRegistered.DESCRIPTOR.full_name
FETCH_BATCH = 64  # Subscription's default batch, used for the raw consumer too
FETCH_TIMEOUT = 2.0  # EventConsumer's default fetch timeout
MAX_ACK_PENDING = max(1000, FETCH_BATCH * 4)  # as EventConsumer configures it
COUNTRIES = ("GB", "DE", "CY", "AE", "ZA", "MY", "TH", "BR")


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """One event as the relay puts it on the wire: payload and headers."""

    event_id: str
    payload: bytes
    headers: dict[str, str]


def user_registered(index: int) -> identity_pb2.UserRegistered:
    """A realistic UserRegistered: fresh user id, a country, a referral code, a timestamp."""
    registered_at = Timestamp()
    registered_at.GetCurrentTime()
    return identity_pb2.UserRegistered(
        user_id=str(uuid.uuid4()),
        country_code=COUNTRIES[index % len(COUNTRIES)],
        referral_code=f"IB-{index % 997:05d}" if index % 3 else "",
        registered_at=registered_at,
    )


def wire_message(index: int) -> Wire:
    """``user_registered(index)`` with the header set the outbox relay publishes."""
    event_id = str(uuid.uuid4())
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    headers = nats_headers(
        event_id=event_id,
        event_type=EVENT_TYPE,
        occurred_at=datetime.now(UTC),
        extra={"traceparent": traceparent},
    )
    return Wire(event_id, user_registered(index).SerializeToString(deterministic=True), headers)


def wire_messages(count: int) -> list[Wire]:
    return [wire_message(index) for index in range(count)]


def describe_message() -> str:
    sample = wire_message(1)
    header_bytes = sum(len(k) + len(v) + 4 for k, v in sample.headers.items())
    return (
        f"message: {EVENT_TYPE} on {SUBJECT}, {len(sample.payload)} B payload "
        f"+ ~{header_bytes} B headers ({', '.join(sample.headers)})"
    )


# -- JetStream helpers -------------------------------------------------------------


async def fresh_stream(js: JetStreamContext) -> None:
    """Nothing left from an earlier phase: every stream deleted, the producer's recreated."""
    await delete_streams(js)
    await ensure_stream(js, STREAM)


async def publish_all(js: JetStreamContext, messages: Sequence[Wire]) -> None:
    """Pipelined publish of ``messages``, returning once every ack is in."""
    for wire in messages:
        await js.publish_async(SUBJECT, wire.payload, headers=wire.headers)
    await js.publish_async_completed()


async def expect_messages(js: JetStreamContext, count: int) -> None:
    stored = (await js.stream_info(STREAM.name)).state.messages
    if stored != count:
        raise BenchError(f"{STREAM.name} holds {stored} messages, expected {count}")


def consumer_config(durable: str) -> ConsumerConfig:
    """A raw durable pull consumer configured as EventConsumer configures its own."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=-1,
        filter_subjects=[SUBJECT],
        deliver_policy=DeliverPolicy.ALL,
        max_ack_pending=MAX_ACK_PENDING,
    )


async def pull_subscription(js: JetStreamContext, durable: str) -> PullSubscription:
    """Create the durable (see :func:`consumer_config`) and bind a pull subscription to it."""
    await js.add_consumer(STREAM.name, consumer_config(durable))
    return await js.pull_subscribe_bind(durable=durable, stream=STREAM.name)


async def fetch(psub: PullSubscription, batch: int) -> list[Msg]:
    """One pull; an empty list when the fetch timed out."""
    try:
        return await psub.fetch(batch=batch, timeout=FETCH_TIMEOUT)
    except TimeoutError:
        return []


# -- raw publish → consume ---------------------------------------------------------


async def publish_consume(nc: NATS, count: int, batch: int = FETCH_BATCH) -> float:
    """Seconds from the first pipelined publish until a durable pull consumer (fetch
    ``batch``, ack each) has acked the last of ``count`` messages, both running at once.

    Starts from a fresh stream (every stream is deleted first) and leaves it behind.
    """
    js = nc.jetstream()
    messages = wire_messages(count)
    await fresh_stream(js)
    psub = await pull_subscription(js, "bench-raw-publish-consume")
    received = 0

    async def consume() -> None:
        nonlocal received
        while received < count:
            for msg in await fetch(psub, min(batch, count - received)):
                await msg.ack()
                received += 1
        await nc.flush()

    start = time.perf_counter()
    consumer = asyncio.create_task(consume(), name="raw-publish-consume")
    try:
        await publish_all(js, messages)
        await asyncio.wait_for(asyncio.shield(consumer), patience(count))
    except TimeoutError:
        raise BenchError(f"raw consumer got {received} of {count} messages") from None
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await psub.unsubscribe()
    return time.perf_counter() - start
