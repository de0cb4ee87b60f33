"""mtbridge deal sync: deals/s pulled from mt5sim and published, and deal-to-NATS lag.

The MT5 simulator (``Mt5SimProcess``) and the bridge (``python -m pipworks_mtbridge``)
run as real processes. Accounts open the way production opens them: a
``kyc.application.approved`` event per user, so the bridge maps each login to a user.
Throughput: a backlog of deals injected through ``POST /sim/deals``, timed from the end of
the injection until every ``deal.executed`` is stored in the bridge's stream (deals the
bridge had already published by then are not counted), beside raw ``js.publish`` of a
payload of the same size and headers. Lag: the simulator's activity generator at a steady
rate; per event, the time JetStream stored it minus the deal's time on the simulator
(``executed_at``), both wall clocks of this machine. The sync interval bounds it below.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from bench._harness import (
    BenchContext,
    BenchError,
    Result,
    delete_streams,
    latency,
    note,
    note_load,
    patience,
    throughput,
    wait_until,
    warmup_size,
)
from bench._mt5 import (
    DEAL_SUBJECT,
    SERVER,
    STREAM,
    bridge_spec,
    open_accounts,
    sim_control,
    simulator,
    stop_activity,
    subject_count,
    wait_count,
)
from bench._services import Keys, running_services
from pipworks.events.v1 import mtbridge_pb2
from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_platform.events import nats_headers

LOGINS = 4
DEALS = 20_000  # the injected backlog (2,000 with --quick)
LAG_DEALS = 1_000  # at LAG_RATE: 20 s at full scale
LAG_RATE = 50.0  # deals per second from the simulator's activity generator
SYNC_INTERVAL = 0.2  # PIPWORKS_MTBRIDGE_SYNC_INTERVAL_SECONDS (service default 1 s)
FUNDING = Decimal("100000000")  # per login, so no deal is refused for margin

RAW_STREAM = "BENCH_MTBRIDGE_RAW"
RAW_SUBJECT = "bench.mtbridge.raw.deal"


# -- raw baseline ----------------------------------------------------------------------


def sample_deal() -> tuple[bytes, dict[str, str]]:
    """A ``MtDealExecuted`` as the bridge's relay sends it: payload and headers."""
    now = datetime.now(UTC)
    deal = mtbridge_pb2.MtDealExecuted(
        user_id=str(uuid.uuid4()),
        server=SERVER,
        login=500_000,
        deal=1_000_123,
        position_id=1_000_100,
        action=0,
        entry=0,
        symbol="EURUSD",
        volume_lots="0.10",
        price="1.08512",
        profit="-12.34",
        commission="0.00",
        swap="0.00",
        currency="USD",
    )
    deal.executed_at.FromDatetime(now)
    headers = nats_headers(
        event_id=str(uuid.uuid4()),
        event_type=deal.DESCRIPTOR.full_name,
        occurred_at=now,
        extra={"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"},
    )
    return deal.SerializeToString(), headers


async def raw_publish(nc: NATS, count: int, *, pipelined: bool) -> tuple[float, list[float]]:
    """Seconds to publish ``count`` messages (unique msg ids), and each awaited ack's wait."""
    js = nc.jetstream()
    payload, base_headers = sample_deal()
    headers = [{**base_headers, "Nats-Msg-Id": f"{i}-{uuid.uuid4().hex}"} for i in range(count)]
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(RAW_STREAM)
    await js.add_stream(StreamConfig(name=RAW_STREAM, subjects=[RAW_SUBJECT]))
    waits: list[float] = []
    try:
        start = time.perf_counter()
        if pipelined:
            for header in headers:
                await js.publish_async(RAW_SUBJECT, payload, headers=header)
            await js.publish_async_completed()
        else:
            for header in headers:
                sent = time.perf_counter()
                await js.publish(RAW_SUBJECT, payload, headers=header)
                waits.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - start
        stored = (await js.stream_info(RAW_STREAM)).state.messages
        if stored != count:
            raise BenchError(f"{RAW_STREAM} holds {stored} messages, expected {count}")
    finally:
        await js.delete_stream(RAW_STREAM)
    return elapsed, waits


# -- the bridge's figures --------------------------------------------------------------


async def drain_backlog(
    js: JetStreamContext,
    sim: Mt5SimProcess,
    logins: list[int],
    count: int,
    alive: Callable[[], None],
) -> tuple[int, float, float]:
    """Inject ``count`` deals; (deals still unpublished at the end of the injection,
    seconds from then until all are in the stream, seconds the injection took)."""
    before = await subject_count(js, DEAL_SUBJECT)
    share, extra = divmod(count, len(logins))
    started = time.perf_counter()
    for index, login in enumerate(logins):
        wanted = share + (1 if index < extra else 0)
        reply = await sim_control(sim, "POST", "/sim/deals", {"login": login, "count": wanted})
        if reply.get("count") != wanted:
            raise BenchError(f"mt5sim made {reply.get('count')} of {wanted} deals for {login}")
    injected = time.perf_counter()
    pending = before + count - await subject_count(js, DEAL_SUBJECT)
    await wait_count(js, DEAL_SUBJECT, before + count, f"{count} deals to be published", alive)
    done = time.perf_counter()
    final = await subject_count(js, DEAL_SUBJECT)
    if final != before + count:
        raise BenchError(f"{final - before} deal events for {count} deals")
    return pending, done - injected, injected - started


async def deal_lag(
    js: JetStreamContext,
    sim: Mt5SimProcess,
    logins: list[int],
    count: int,
    alive: Callable[[], None],
) -> list[float]:
    """Stored-on-NATS minus the deal's simulator time, per deal, at LAG_RATE."""
    lags: list[float] = []
    seen: set[int] = set()

    async def on_message(msg: Msg) -> None:
        deal = mtbridge_pb2.MtDealExecuted.FromString(msg.data)
        if deal.deal in seen:
            return
        seen.add(deal.deal)
        stored = msg.metadata.timestamp
        lags.append((stored - deal.executed_at.ToDatetime(tzinfo=UTC)).total_seconds())

    sub = await js.subscribe(
        DEAL_SUBJECT, stream=STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
    )
    reader = asyncio.create_task(_read(sub, on_message), name="mtbridge-lag-reader")
    try:
        await sim_control(
            sim,
            "POST",
            "/sim/activity",
            {"logins": logins, "deals_per_second": LAG_RATE, "count": count},
        )

        async def complete() -> bool:
            alive()
            if reader.done():
                reader.result()
            return len(lags) >= count

        await wait_until(
            complete, within=count / LAG_RATE + patience(count), what=f"{count} deal events"
        )
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await sub.unsubscribe()
        await stop_activity(sim)
    return lags


async def _read(sub: object, handle: Callable[[Msg], Awaitable[None]]) -> None:
    async for msg in sub.messages:  # type: ignore[attr-defined]
        await handle(msg)


# -- the bench -------------------------------------------------------------------------


async def run(ctx: BenchContext) -> list[Result]:
    deals = ctx.scaled(DEALS, minimum=200)
    lag_deals = ctx.scaled(LAG_DEALS, minimum=100)
    note(
        f"mt5sim + python -m pipworks_mtbridge; {LOGINS} KYC-opened logins; sync interval "
        f"{SYNC_INTERVAL:g}s (lag is bounded below by it), batch size default 500"
    )
    async with (
        simulator(ctx) as sim,
        ctx.nats_client() as nc,
        running_services(ctx, bridge_spec(Keys(), sim.url, SYNC_INTERVAL)) as services,
    ):
        js = nc.jetstream()
        bridge = services["mtbridge"]
        try:
            return await measure(ctx, nc, js, sim, bridge.check_alive, deals, lag_deals)
        finally:
            await delete_streams(js)


async def measure(
    ctx: BenchContext,
    nc: NATS,
    js: JetStreamContext,
    sim: Mt5SimProcess,
    alive: Callable[[], None],
    deals: int,
    lag_deals: int,
) -> list[Result]:
    seq, ack_waits = await raw_publish(nc, deals, pipelined=False)
    pipe, _ = await raw_publish(nc, deals, pipelined=True)

    users = [uuid.uuid4() for _ in range(LOGINS)]
    logins = sorted(await open_accounts(js, sim, users, FUNDING, alive))
    await drain_backlog(js, sim, logins, warmup_size(deals), alive)
    pending, seconds, injecting = await drain_backlog(js, sim, logins, deals, alive)
    note(
        f"injecting {deals:,} deals took {injecting:.2f}s on mt5sim; {deals - pending:,} "
        f"were already published when it ended, {pending:,} timed after it"
    )
    lags = await deal_lag(js, sim, logins, lag_deals, alive)
    note_load()
    return [
        throughput("seq", "raw: js.publish, await each ack", deals, seq),
        throughput("pipe", "raw: js.publish_async pipelined", deals, pipe),
        throughput(
            "bridge",
            "bridge: backlog on mt5sim → deal.executed stored",
            pending,
            seconds,
            baseline="seq",
        ),
        throughput(
            "bridge_pipe",
            "bridge: the same, beside pipelined publish",
            pending,
            seconds,
            baseline="pipe",
        ),
        latency("ack", "raw: js.publish → ack", ack_waits),
        latency(
            "lag",
            f"bridge: deal time on mt5sim → stored on NATS, {LAG_RATE:g} deals/s",
            lags,
            baseline="ack",
        ),
    ]
