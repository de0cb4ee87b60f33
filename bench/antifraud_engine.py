"""antifraud: events/s through the engine with the full built-in rule set, and decision
latency (event published on NATS → its scores, alerts and state committed).

A population of clients (100,000; 10,000 with --quick) produces a realistic mix of
events — trades opening and closing positions, card deposits, withdrawals, logins from
several networks and devices, KYC approvals — published as identity, kyc and mtbridge
would publish them. The service's own composition (``build_deps``: rule book with the
built-in rules, IP-range geolocation, the bounded state cache) runs behind the
service's batch consumers (a fetched batch per transaction), one durable per producing
service, as in production. After a warm-up, the backlog is published while the
consumers are stopped; throughput is timed from their restart until every event is
committed, beside raw JetStream pull consumers fetching and acking the same messages.
Latency is measured at a steady rate below saturation.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._harness import (
    BenchContext,
    BenchError,
    LatencyClock,
    Result,
    delete_streams,
    latency,
    note,
    note_load,
    paced,
    patience,
    throughput,
    usable_cores,
    wait_until,
)
from pipworks.common.v1 import payment_pb2
from pipworks.events.v1 import identity_pb2, kyc_pb2, mtbridge_pb2
from pipworks_antifraud import __version__
from pipworks_antifraud.main import DEFINITION, Deps, build_deps, subscriptions
from pipworks_antifraud.settings import SAMPLE_GEOIP_CSV, AntifraudSettings
from pipworks_platform.consumer import EventConsumer, InboundEvent
from pipworks_platform.db import UnitOfWork, create_engine
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.runtime import Infrastructure
from pipworks_platform.streams import ensure_stream, producer_of, service_stream

CLIENTS = 100_000
EVENTS = 50_000  # the backlog (5,000 with --quick)
LATENCY_EVENTS = 3_000  # 15 s at LATENCY_RATE (300 with --quick)
LATENCY_RATE = 200.0  # events per second, below saturation
FETCH_BATCH = 256  # PIPWORKS_ANTIFRAUD_FETCH_BATCH's default
PRODUCERS = ("identity", "kyc", "mtbridge")
IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.", "10.1.2.", "172.16.5.", "100.64.7.")
COUNTRIES = ("GB", "DE", "CY", "AU", "US", "SG", "FR")


def _stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


@dataclass(frozen=True)
class Wire:
    event_id: str
    subject: str
    payload: bytes
    headers: dict[str, str]


class Population:
    """Clients with a home network, device, card and country, and a seeded generator of
    their events in time order. Most activity is ordinary; a few percent of it is what the
    rules look for (travel, foreign cards, amounts near or over the thresholds)."""

    def __init__(self, clients: int, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.users = [
            str(uuid.UUID(int=self.random.getrandbits(128), version=4)) for _ in range(clients)
        ]
        self.clock = datetime.now(UTC) - timedelta(days=3)
        self.open_positions: dict[str, list[int]] = {}
        self.position = 0

    def home_ip(self, index: int) -> str:
        # 10.0.0.0/8 (CY), 172.16.0.0/12 (US) and 100.64.0.0/10 (SG) in the sample ranges
        first, second = (
            ("10", index >> 16),
            ("172", 16 + (index >> 16) % 16),
            ("100", 64 + (index >> 16) % 64),
        )[index % 3]
        return f"{first}.{second}.{(index >> 8) & 255}.{index & 255}"

    def next_event(self) -> Message:
        r = self.random
        index = r.randrange(len(self.users))
        user = self.users[index]
        self.clock += timedelta(milliseconds=r.randint(1, 20))
        at = _stamp(self.clock)
        roll = r.random()
        if roll < 0.45:
            positions = self.open_positions.setdefault(user, [])
            closing = bool(positions) and r.random() < 0.5
            if closing:
                position = positions.pop()
            else:
                self.position += 1
                position = self.position
                positions.append(position)
            return mtbridge_pb2.MtDealExecuted(
                user_id=user,
                server="mt5-live",
                login=100_000 + index,
                deal=position,
                position_id=position,
                action=r.randint(0, 1),
                entry=1 if closing else 0,
                symbol=r.choice(("EURUSD", "XAUUSD", "GBPUSD")),
                volume_lots=str(r.choice((0.01, 0.1, 0.2, 0.5, 1))),
                price="1.08",
                profit=f"{r.uniform(-50, 60):.2f}" if closing else "0",
                executed_at=at,
                currency="USD",
            )
        if roll < 0.60:
            deposit = roll < 0.56
            amount = r.choice((50, 100, 250, 500, 1000, 2000))
            if r.random() < 0.01:
                amount = r.choice((9500, 12000))
            foreign = r.random() < 0.01
            return mtbridge_pb2.MtBalanceChanged(
                user_id=user,
                server="mt5-live",
                login=100_000 + index,
                deal=r.getrandbits(40),
                action=2,
                amount=f"{amount}.00" if deposit else f"-{amount}.00",
                currency="USD",
                executed_at=at,
                operation_kind=(
                    mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT
                    if deposit
                    else mtbridge_pb2.MT_OPERATION_KIND_WITHDRAWAL
                ),
                payment=payment_pb2.PaymentDetails(
                    method="CARD",
                    instrument_fingerprint=f"card-{index}",
                    country_code=r.choice(COUNTRIES) if foreign else ("CY", "US", "SG")[index % 3],
                ),
            )
        if roll < 0.98:
            travelling = r.random() < 0.02
            ip = (
                f"{r.choice(IP_PREFIXES)}{r.randint(1, 254)}" if travelling else self.home_ip(index)
            )
            return identity_pb2.LoginSucceeded(
                user_id=user,
                session_id=str(uuid.UUID(int=r.getrandbits(128), version=4)),
                ip_address=ip,
                user_agent="bench",
                device_id=f"dev-{index}",
                aal=2,
                occurred_at=at,
            )
        return kyc_pb2.KycApplicationApproved(
            application_id=str(uuid.UUID(int=r.getrandbits(128), version=4)),
            user_id=user,
            level=1,
            currency="USD",
            approved_at=at,
            country_code=("CY", "US", "SG")[index % 3],
            risk_rating=kyc_pb2.KYC_RISK_RATING_LOW,
        )

    def wires(self, count: int) -> list[Wire]:
        out = []
        for _ in range(count):
            message = self.next_event()
            event_id = str(uuid.UUID(int=self.random.getrandbits(128), version=4))
            out.append(
                Wire(
                    event_id,
                    subject_of(message),
                    message.SerializeToString(),
                    nats_headers(
                        event_id=event_id,
                        event_type=message.DESCRIPTOR.full_name,
                        occurred_at=datetime.now(UTC),
                        extra={},
                    ),
                )
            )
        return out


class Counted:
    """Wraps the detector: counts committed events and stamps their latency."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.done = 0
        self.clock: LatencyClock | None = None

    async def handle(self, event: InboundEvent, uow: UnitOfWork) -> None:
        await self.deps.detector.handle(event, uow)  # commits the event's effects itself
        self._arrived([event])

    async def handle_batch(self, events: Sequence[InboundEvent], uow: UnitOfWork) -> None:
        await self.deps.detector.handle_batch(events, uow)  # commits the batch itself
        self._arrived(events)

    def _arrived(self, events: Sequence[InboundEvent]) -> None:
        self.done += len(events)
        if self.clock is not None:
            for event in events:
                self.clock.arrived(str(event.event_id))


async def publish(nc: NATS, wires: list[Wire]) -> None:
    js = nc.jetstream()
    for wire in wires:
        await js.publish_async(wire.subject, wire.payload, headers=wire.headers)
    await js.publish_async_completed()


async def fresh_streams(nc: NATS) -> None:
    js = nc.jetstream()
    await delete_streams(js)
    for producer in PRODUCERS:
        await ensure_stream(js, service_stream(producer))


async def raw_consume(nc: NATS, wires: list[Wire]) -> float:
    """Pull-fetch and ack the same messages with raw nats-py consumers, one per stream."""
    await fresh_streams(nc)
    await publish(nc, wires)
    js = nc.jetstream()
    per_stream: dict[str, int] = {}
    for wire in wires:
        stream = service_stream(producer_of(wire.subject)).name
        per_stream[stream] = per_stream.get(stream, 0) + 1

    async def drain(stream: str, count: int) -> None:
        durable = f"raw-{stream.lower()}"
        await js.add_consumer(
            stream,
            ConsumerConfig(
                name=durable,
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=max(1000, FETCH_BATCH * 4),
            ),
        )
        psub = await js.pull_subscribe_bind(durable=durable, stream=stream)
        got = 0
        while got < count:
            try:
                messages = await psub.fetch(batch=FETCH_BATCH, timeout=2.0)
            except TimeoutError:
                continue
            for msg in messages:
                await msg.ack()
                got += 1
        await psub.unsubscribe()

    start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(drain(s, n) for s, n in per_stream.items())), patience(len(wires), 500)
    )
    await nc.flush()
    return time.perf_counter() - start


@asynccontextmanager
async def service(url: str, nc: NATS, clients: int) -> AsyncIterator[tuple[Counted, AsyncEngine]]:
    assert DEFINITION.migrations is not None
    await upgrade_to_head(url, DEFINITION.migrations, service="antifraud")
    engine = create_engine(url, application_name="bench-antifraud", pool_size=8)
    settings = AntifraudSettings(
        database_url=url,
        metrics_port=0,
        antifraud_geoip_csv=SAMPLE_GEOIP_CSV,
        antifraud_state_cache_size=clients,
    )
    infra = Infrastructure(
        name="antifraud", version=__version__, settings=settings, nats=nc, engine=engine
    )
    counted = Counted(build_deps(infra))
    await counted.deps.rulebook.current()
    try:
        yield counted, engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def consumers(nc: NATS, counted: Counted, infra_uow: object) -> AsyncIterator[None]:
    running = [
        EventConsumer(service="antifraud", nats=nc, unit_of_work=infra_uow, subscription=sub)
        for sub in subscriptions(counted.handle, counted.handle_batch, FETCH_BATCH)
    ]
    tasks = [asyncio.create_task(c.run()) for c in running]
    try:
        yield
    finally:
        for c in running:
            c.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)


async def run(ctx: BenchContext) -> list[Result]:
    clients = ctx.scaled(CLIENTS, minimum=1000)
    events = ctx.scaled(EVENTS, minimum=500)
    sampled = ctx.scaled(LATENCY_EVENTS, minimum=100)
    note(
        f"{clients:,} clients, {events:,}-event backlog, {len(PRODUCERS)} durable consumers "
        f"(fetch {FETCH_BATCH}), built-in rule set, {usable_cores()} usable cores"
    )
    population = Population(clients)
    warm = population.wires(min(1000, events // 10))
    backlog = population.wires(events)
    steady = population.wires(sampled)
    async with ctx.nats_client() as nc, ctx.database("bench_antifraud") as url:
        try:
            raw = await raw_consume(nc, backlog)
            async with service(url, nc, clients) as (counted, _engine):
                uow = counted.deps.staff.uow
                await fresh_streams(nc)
                async with consumers(nc, counted, uow):
                    await publish(nc, warm)
                    await wait_until(
                        _reached(counted, len(warm)),
                        within=patience(len(warm)),
                        what="the warm-up events",
                    )
                # the backlog waits in the streams while the (warm) service is stopped
                await publish(nc, backlog)
                base = counted.done
                start = time.perf_counter()
                async with consumers(nc, counted, uow):
                    await wait_until(
                        _reached(counted, base + len(backlog)),
                        within=patience(len(backlog)),
                        what="the backlog",
                        poll=0.01,
                    )
                    engine_seconds = time.perf_counter() - start
                    clock = LatencyClock()
                    counted.clock = clock
                    js = nc.jetstream()

                    async def produce(index: int) -> None:
                        wire = steady[index]
                        clock.sent(wire.event_id)
                        await js.publish(wire.subject, wire.payload, headers=wire.headers)

                    base = counted.done
                    await paced(len(steady), LATENCY_RATE, produce)
                    await wait_until(
                        _reached(counted, base + len(steady)),
                        within=patience(len(steady)),
                        what="the paced events",
                    )
                alerts = await _count(counted, "SELECT count(*) FROM alerts")
                total = len(warm) + len(backlog) + len(steady)
                note(
                    f"alerts raised over the run: {alerts:,} ({alerts / total:.2%} of events); "
                    f"cached client states: {len(counted.deps.detector.cache):,}"
                )
        finally:
            await delete_streams(nc.jetstream())
    note_load()
    if not clock.latencies():
        raise BenchError("no latency samples")
    return [
        throughput("raw", f"raw: pull fetch({FETCH_BATCH}) + ack, 3 streams", len(backlog), raw),
        throughput(
            "engine",
            "antifraud: consume → rules → state, alerts, scores committed",
            len(backlog),
            engine_seconds,
            baseline="raw",
        ),
        latency(
            "decision",
            f"antifraud: published → score committed at {LATENCY_RATE:g}/s",
            clock.latencies(),
        ),
    ]


def _reached(counted: Counted, target: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return counted.done >= target

    return check


async def _count(counted: Counted, query: str) -> int:
    async with counted.deps.staff.uow() as uow:
        return int(await uow.session.scalar(sa.text(query)) or 0)
