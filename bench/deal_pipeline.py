"""The whole deal pipeline on one machine: mt5sim → mtbridge → JetStream → ib and antifraud.

Every part is a real process on the run's PostgreSQL and nats-server: the MT5 simulator
(``Mt5SimProcess``), ``python -m pipworks_mtbridge`` syncing deals from it over HTTP
(MT5 Web API, every SYNC_INTERVAL), ``python -m pipworks_ib`` pricing each closing deal
for a 10-level partner chain into its ledger, and ``python -m pipworks_antifraud``
running its built-in rules on the same events.

Set-up (not timed), the fastest honest way for 10,000 clients (1,000 with --quick): the
simulator starts from a state file holding their funded logins (made with its own
``SimState``), the bridge's database gets the same logins in its ``accounts`` table and
ib's gets 100 chains of 10 partners, a plan and the clients' attributions — each written
with COPY into the service's own schema after its own migrations, as ``ib_commissions``
does, before the services start. So the bridge owns every account, exactly as if it had
opened it. Opening them through the bridge instead (a ``kyc.application.approved`` each,
as ``mtbridge_sync`` does) took about 50 ms per account with its funding on a loaded
2-core machine — three commits and two MT5 calls, one account at a time — some 8 minutes
for 10,000, which is not what is measured.

Throughput: the simulator's activity generator makes a burst of deals (30,000; 3,000
with --quick) on EURUSD and GBPUSD, round-robin over every login, opening and closing
positions. The figure is deals / seconds from the burst's start until ib has stored every
deal and written the ledger rows of every closing one (checked), and again until
antifraud's durable consumer has nothing pending. Baseline: raw JetStream pipelined
publish with a pull consumer (fetch BATCH, ack each) draining at the same time, measured
first in the same run after a warm-up. CPU seconds of every process (psutil, PostgreSQL
with its backends, nats-server) are taken over the burst.

Latency: deals paced at 30% of the burst's rate (or half that, when latency kept rising
over the first try: the pace was not below saturation), after 10 s (3 s with --quick) of
the same pace unsampled, as the burst leaves work behind; per closing deal, from its ``TimeMsc``
on the simulator (the ledger's ``occurred_at``) to, stage by stage: its
``deal.executed`` stored on NATS (the bridge), its ledger rows' ``recorded_at`` (ib's
clock, stamped in the transaction that commits the rows, just before the commit), and
its ``commission.accrued`` stored on NATS (ib's outbox relay, after the commit) — so the
commit lies between the last two. All are wall clocks of this machine. The bridge's sync
interval bounds every stage below.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
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
    percentile,
    quantity,
    throughput,
    usable_cores,
    wait_until,
    warm_then_measure,
    warmup_size,
)
from bench._ib import DEPTH, ib_spec, migrate, plan_terms, seed_network
from bench._jetstream import publish_consume
from bench._mt5 import (
    DEAL_SUBJECT,
    STREAM,
    bridge_spec,
    funded_users,
    migrate_bridge,
    seed_accounts,
    sim_control,
    simulator,
    stop_activity,
)
from bench._services import (
    Keys,
    Processes,
    ServiceProcess,
    ServiceSpec,
    bench_process,
    metered,
    postgres_processes,
    running_services,
)
from pipworks.events.v1 import ib_pb2, mtbridge_pb2
from pipworks_antifraud.settings import SAMPLE_GEOIP_CSV
from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_devstack.nats import PID_FILE_NAME
from pipworks_platform.db import libpq_dsn
from pipworks_platform.events import subject_of

CLIENTS = 10_000  # each with a login the bridge owns, under one of CHAINS chains
CHAINS = 100
DEALS = 30_000  # the measured burst
RAW_MESSAGES = 20_000  # the raw JetStream baseline (5,000 with --quick), after a warm-up
LATENCY_SECONDS = 20.0  # of paced deals (at least 5 s with --quick)
LATENCY_LOAD = 0.3  # paced at this fraction of the burst's rate: below saturation
PACED_WARMUP_SECONDS = 10.0  # paced, unsampled, before the latency (at least 3 s)
DRIFT = 1.5  # a first-fifth / last-fifth p50 ratio beyond this is a trend, not noise
RISING = "rising"
BURST_RATE = 100_000.0  # the generator's maximum: as fast as the simulator makes deals
SYNC_INTERVAL = 0.2  # PIPWORKS_MTBRIDGE_SYNC_INTERVAL_SECONDS (service default 1 s)
BATCH = 256  # ib's consumer batch (its default) and the raw consumer's fetch
SYMBOLS = ("EURUSD", "GBPUSD")  # the plan's FX group: every closing deal earns
FUNDING = Decimal("10000")  # per login: margin for a few lots of open positions
ANTIFRAUD_DURABLE = "antifraud-mtbridge"
ACCRUED_SUBJECT = subject_of(ib_pb2.IbCommissionAccrued)
POLL = 0.05


@dataclass(frozen=True)
class Phase:
    """One run of the generator: how many deals, their tickets, and when each side was done."""

    deals: int
    first_ticket: int
    end_ticket: int  # exclusive
    ib_seconds: float
    all_seconds: float  # ib and antifraud


class Pipeline:
    """The running pipeline: drive the simulator, watch ib's ledger and antifraud's consumer."""

    def __init__(
        self,
        js: JetStreamContext,
        sim: Mt5SimProcess,
        ib_db: asyncpg.Connection,
        services: dict[str, ServiceProcess],
        logins: Sequence[int],
    ) -> None:
        self.js = js
        self.sim = sim
        self.ib_db = ib_db
        self.services = services
        self.logins = list(logins)

    def alive(self) -> None:
        for service in self.services.values():
            service.check_alive()
        if not self.sim.running:
            raise BenchError("mt5sim exited")

    async def next_ticket(self) -> int:
        return int((await sim_control(self.sim, "GET", "/sim/state"))["next_ticket"])

    async def ib_deals(self) -> int:
        return int(await self.ib_db.fetchval("SELECT count(*) FROM client_deals"))

    async def antifraud_idle(self) -> bool:
        """antifraud's durable on the bridge's stream has nothing undelivered or unacked."""
        try:
            info = await self.js.consumer_info(STREAM, ANTIFRAUD_DURABLE)
        except NotFoundError:
            return False
        return not info.num_pending and not info.num_ack_pending

    async def run(self, count: int, rate: float) -> Phase:
        """``count`` deals at ``rate`` per second; returns once ib and antifraud have all."""
        first_ticket = await self.next_ticket()
        stored = await self.ib_deals()
        started = time.perf_counter()
        reply = await sim_control(
            self.sim,
            "POST",
            "/sim/activity",
            {
                "logins": self.logins,
                "deals_per_second": rate,
                "count": count,
                "symbols": list(SYMBOLS),
            },
        )
        activity = reply["answer"]["id"]
        try:

            async def ib_done() -> bool:
                self.alive()
                return await self.ib_deals() >= stored + count

            await wait_until(
                ib_done,
                within=count / rate + patience(count, 100.0),
                what=f"ib to store {count:,} deals",
                poll=POLL,
            )
            ib_seconds = time.perf_counter() - started

            async def antifraud_done() -> bool:
                self.alive()
                return await self.antifraud_idle()

            await wait_until(
                antifraud_done,
                within=patience(count, 100.0),
                what=f"antifraud to evaluate {count:,} deals",
                poll=POLL,
            )
            all_seconds = time.perf_counter() - started
            state = (await sim_control(self.sim, "GET", f"/sim/activity/{activity}"))["answer"]
        finally:
            await stop_activity(self.sim)
        if state["produced"] != count or await self.ib_deals() != stored + count:
            raise BenchError(
                f"mt5sim made {state['produced']} deals for {count}; "
                f"ib stored {await self.ib_deals() - stored}"
            )
        return Phase(count, first_ticket, await self.next_ticket(), ib_seconds, all_seconds)

    async def check_ledger(self, phase: Phase) -> tuple[int, int]:
        """(closing deals, ledger rows) of the phase; every closing deal must have rows."""
        closing, priced, rows = await self.ib_db.fetchrow(
            "SELECT (SELECT count(*) FROM client_deals WHERE ticket >= $1 AND ticket < $2"
            "        AND entry <> 0),"
            "       count(DISTINCT deal), count(*)"
            " FROM ledger WHERE deal >= $1 AND deal < $2",
            phase.first_ticket,
            phase.end_ticket,
        )
        if closing == 0 or priced != closing:
            raise BenchError(f"{closing} closing deals, but ledger rows for {priced}")
        return closing, rows

    async def deal_times(self, phase: Phase) -> dict[int, tuple[datetime, datetime]]:
        """Per closing deal of the phase: (its TimeMsc, its ledger rows' recorded_at)."""
        rows = await self.ib_db.fetch(
            "SELECT deal, min(occurred_at) AS executed, min(recorded_at) AS recorded"
            " FROM ledger WHERE deal >= $1 AND deal < $2 GROUP BY deal",
            phase.first_ticket,
            phase.end_ticket,
        )
        return {row["deal"]: (row["executed"], row["recorded"]) for row in rows}


def deal_of_accrual(data: bytes) -> int:
    event = ib_pb2.IbCommissionAccrued.FromString(data)
    return event.accruals[0].deal if event.accruals else 0


def deal_of_execution(data: bytes) -> int:
    return mtbridge_pb2.MtDealExecuted.FromString(data).deal


@asynccontextmanager
async def stored_times(
    js: JetStreamContext, subject: str, deal_of: Callable[[bytes], int]
) -> AsyncIterator[dict[int, datetime]]:
    """While open: deal ticket → when JetStream stored the first new event about it on
    ``subject`` (``deal_of`` reads the ticket from the payload)."""
    stored: dict[int, datetime] = {}
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)

    async def read() -> None:
        async for msg in sub.messages:
            stored.setdefault(deal_of(msg.data), msg.metadata.timestamp)

    reader = asyncio.create_task(read(), name=f"deal-pipeline-{subject}")
    try:
        yield stored
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await sub.unsubscribe()


@dataclass(frozen=True)
class Paced:
    """A paced phase: per closing deal, its TimeMsc and recorded_at, and when its
    deal.executed and commission.accrued events were stored."""

    phase: Phase
    times: dict[int, tuple[datetime, datetime]]
    synced: dict[int, datetime]
    accrued: dict[int, datetime]

    def drift(self) -> tuple[float, float]:
        """Median seconds from deal to ledger over the first and the last fifth of the
        deals, in deal time order."""
        ordered = sorted(self.times, key=lambda deal: self.times[deal][0])
        fifth = max(1, len(ordered) // 5)

        def median(deals: list[int]) -> float:
            lags = [(self.times[d][1] - self.times[d][0]).total_seconds() for d in deals]
            return percentile(lags, 0.5) or 0.0

        return median(ordered[:fifth]), median(ordered[-fifth:])

    @property
    def trend(self) -> str:
        first, last = self.drift()
        if last > first * DRIFT:
            return RISING
        return "falling" if first > last * DRIFT else "steady"

    def describe_drift(self) -> str:
        first, last = self.drift()
        return (
            f"p50 to ledger {first * 1000:,.0f} ms over the first fifth, "
            f"{last * 1000:,.0f} ms over the last: {self.trend}"
        )


async def paced_latency(
    pipeline: Pipeline, rate: float, warmup_seconds: float, seconds: float
) -> Paced:
    """Deals at ``rate`` for ``seconds`` after ``warmup_seconds`` of it unsampled (the
    burst leaves work behind: checkpoints, autovacuum), with their stage times."""
    await pipeline.run(max(50, round(rate * warmup_seconds)), rate)
    async with (
        stored_times(pipeline.js, DEAL_SUBJECT, deal_of_execution) as synced,
        stored_times(pipeline.js, ACCRUED_SUBJECT, deal_of_accrual) as accrued,
    ):
        phase = await pipeline.run(max(100, round(rate * seconds)), rate)
        await pipeline.check_ledger(phase)
        times = await pipeline.deal_times(phase)

        async def all_seen() -> bool:
            pipeline.alive()
            return all(deal in accrued and deal in synced for deal in times)

        await wait_until(all_seen, within=30, what="the paced deals' events", poll=POLL)
    return Paced(phase, times, dict(synced), dict(accrued))


def antifraud_spec() -> ServiceSpec:
    env = {
        "PIPWORKS_ANTIFRAUD_GEOIP_CSV": str(SAMPLE_GEOIP_CSV),
        "PIPWORKS_LOG_LEVEL": "warning",
    }
    return ServiceSpec("antifraud", "pipworks_antifraud", env)


def nats_process(ctx: BenchContext) -> Processes:
    pid_file = ctx.nats_server.store_dir / PID_FILE_NAME
    try:
        return Processes("nats-server", int(pid_file.read_text().strip()))
    except (OSError, ValueError):
        raise BenchError(f"cannot read nats-server's pid from {pid_file}") from None


async def run(ctx: BenchContext) -> list[Result]:
    clients = ctx.scaled(CLIENTS, minimum=100)
    deals = ctx.scaled(DEALS, minimum=500)
    raw_count = ctx.scaled(RAW_MESSAGES, minimum=5000)
    latency_seconds = max(5.0, LATENCY_SECONDS * ctx.scale)
    async with ctx.nats_client() as nc:
        js = nc.jetstream()
        try:
            raw_seconds = await warm_then_measure(
                lambda n: publish_consume(nc, n, BATCH), raw_count
            )
            await delete_streams(js)
            started = time.perf_counter()
            sim_state = funded_users(clients, FUNDING)
            owners = {login: uuid.uuid4() for login in sorted(sim_state.users)}
            async with (
                ctx.database("bench_pipeline_mtbridge") as bridge_url,
                ctx.database("bench_pipeline_ib") as ib_url,
                simulator(ctx, sim_state) as sim,
            ):
                await seed(bridge_url, ib_url, owners)
                bridge = bridge_spec(Keys(), sim.url, SYNC_INTERVAL)
                bridge = replace(  # on the database seeded above
                    bridge,
                    database=False,
                    env={
                        **bridge.env,
                        "PIPWORKS_DATABASE_URL": bridge_url,
                        "PIPWORKS_NATS_URL": ctx.nats_server.url,
                        "PIPWORKS_LOG_LEVEL": "warning",
                    },
                )
                specs = (bridge, ib_spec(ib_url, ctx.nats_server.url, BATCH), antifraud_spec())
                ib_db = await asyncpg.connect(libpq_dsn(ib_url))
                try:
                    async with running_services(ctx, *specs) as services:
                        note(
                            f"set-up: {clients:,} funded logins on mt5sim owned by the bridge, "
                            f"under {CHAINS} chains of {DEPTH} partners in ib, "
                            f"{time.perf_counter() - started:.0f}s with the services' start"
                        )
                        pipeline = Pipeline(js, sim, ib_db, services, sorted(owners))
                        results = await measure(ctx, pipeline, deals, latency_seconds)
                finally:
                    await ib_db.close()
        finally:
            await delete_streams(js)
    raw = throughput(
        "raw",
        f"raw JetStream: pipelined publish → pull fetch({BATCH}) + ack",
        raw_count,
        raw_seconds,
    )
    return [raw, *results]


async def seed(bridge_url: str, ib_url: str, owners: dict[int, uuid.UUID]) -> None:
    """The bridge's accounts and ib's partner network, in their own migrated schemas."""
    await migrate_bridge(bridge_url)
    await migrate(ib_url)
    bridge_db = await asyncpg.connect(libpq_dsn(bridge_url))
    try:
        await seed_accounts(bridge_db, owners)
    finally:
        await bridge_db.close()
    ib_db = await asyncpg.connect(libpq_dsn(ib_url))
    try:
        terms = plan_terms(min_lifetime_seconds=0)  # positions here live for seconds
        await seed_network(ib_db, list(owners.values()), chains=CHAINS, terms=terms)
    finally:
        await ib_db.close()


async def measure(
    ctx: BenchContext, pipeline: Pipeline, deals: int, latency_seconds: float
) -> list[Result]:
    await pipeline.run(warmup_size(deals), BURST_RATE)
    meter_items = [
        Processes("mt5sim", pipeline.sim.pid or 0),
        *(pipeline.services[name] for name in ("mtbridge", "ib", "antifraud")),
        postgres_processes(ctx),
        nats_process(ctx),
        bench_process(),
    ]
    with metered(*meter_items) as meter:
        burst = await pipeline.run(deals, BURST_RATE)
    closing, rows = await pipeline.check_ledger(burst)
    cpu_total = sum(meter.used.values())
    note(
        f"burst: {deals:,} deals ({closing:,} closing → {rows:,} ledger rows) over "
        f"{len(pipeline.logins):,} logins; ib done after {burst.ib_seconds:.1f}s, antifraud "
        f"after {burst.all_seconds:.1f}s; sync interval {SYNC_INTERVAL:g}s, ib batch {BATCH}"
    )
    note(
        "CPU over the burst: "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in meter.used.items())
        + f"; {cpu_total:.1f}s in all over {burst.all_seconds:.1f}s on {usable_cores()} cores, "
        f"{cpu_total * 1000 / deals:.2f} CPU ms per deal"
    )
    rate = max(10.0, round(deals / burst.ib_seconds * LATENCY_LOAD))
    warmup_seconds = max(3.0, PACED_WARMUP_SECONDS * ctx.scale)
    paced = await paced_latency(pipeline, rate, warmup_seconds, latency_seconds)
    if paced.trend == RISING:  # not below saturation: once more at half the pace
        note(
            f"latency at {rate:g}/s kept rising ({paced.describe_drift()}): measured again "
            f"at {rate / 2:g}/s"
        )
        rate /= 2
        paced = await paced_latency(pipeline, rate, warmup_seconds, latency_seconds)
    times = paced.times
    recorded = {deal: at for deal, (_, at) in times.items()}

    def since_deal(at: dict[int, datetime]) -> list[float]:
        return [(at[deal] - executed).total_seconds() for deal, (executed, _) in times.items()]

    note(
        f"latency: {paced.phase.deals:,} deals paced at {rate:g}/s after {warmup_seconds:g}s "
        f"of it unsampled; {len(times):,} closing deals sampled; {paced.describe_drift()}. "
        "recorded_at is stamped in the transaction that commits the rows, before the commit; "
        "the accrued event is stored after it (by ib's outbox relay)"
    )
    note_load()
    return [
        throughput(
            "e2e_ib",
            "deals on mt5sim → commission committed in the ib ledger",
            deals,
            burst.ib_seconds,
            baseline="raw",
        ),
        throughput(
            "e2e_all",
            "the same, and evaluated by antifraud",
            deals,
            burst.all_seconds,
            baseline="raw",
        ),
        latency(
            "synced",
            f"deal TimeMsc on mt5sim → deal.executed stored on NATS, at {rate:g} deals/s",
            since_deal(paced.synced),
        ),
        latency(
            "recorded",
            "the same deals → ledger rows recorded_at (ib's clock, before its commit)",
            since_deal(recorded),
        ),
        latency(
            "accrued",
            "the same deals → commission.accrued stored on NATS (after ib's commit)",
            since_deal(paced.accrued),
        ),
        *(
            quantity(f"cpu_{name}", f"CPU over the burst: {name}", seconds, "CPU s", count=deals)
            for name, seconds in meter.used.items()
        ),
    ]
