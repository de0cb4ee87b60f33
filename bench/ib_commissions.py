"""ib commissions: deals/s from JetStream to committed ledger rows, and monthly statements.

Throughput: a backlog of ``deal.executed`` events (closing deals of positions whose
opening predates the ledger, so every deal is priced) for clients each under a 10-level
partner chain, with a plan of one per-lot rule shared by 10 levels (10 ledger rows per
deal). The ib service runs as its own process (``python -m pipworks_ib``) and is started
after the backlog is in the stream; the figure is timed from the first applied deal until
the last, and every ledger row is checked to be there. Baseline: a raw durable pull
consumer (fetch 256, ack each) reading the same messages in the same run.

Statements: ledger rows for many partners over one month, written straight into the
service's schema; the figure is the statement run (every partner's payable rows not yet
in a statement → one statement per partner with its items) beside a plain SQL
``GROUP BY partner`` over the same rows.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench._harness import (
    BenchContext,
    BenchError,
    Result,
    delete_streams,
    note,
    patience,
    throughput,
    wait_until,
)
from bench._ib import BRIDGE_DURABLE, DEPTH, ib_spec, migrate, plan_terms, seed_network
from bench._services import metered, postgres_processes, running_services
from pipworks.events.v1 import mtbridge_pb2
from pipworks_ib.adapters import store
from pipworks_platform.db import create_engine, libpq_dsn
from pipworks_platform.db.engine import session_factory
from pipworks_platform.db.unit_of_work import UnitOfWorkFactory
from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.streams import ensure_stream, service_stream

DEALS = 50_000  # the backlog (5,000 with --quick)
CHAINS = 100  # 10-level chains
CLIENTS = 2_000
BATCH = 256
STATEMENT_ROWS = 1_000_000  # ledger rows over the month (100,000 with --quick)
STATEMENT_PARTNERS = 10_000
SUBJECT = subject_of(mtbridge_pb2.MtDealExecuted)
STREAM = service_stream("mtbridge")
DEAL_TIME = datetime(2026, 10, 15, tzinfo=UTC)


def deal_message(index: int, client: uuid.UUID) -> bytes:
    stamp = Timestamp()
    stamp.FromDatetime(DEAL_TIME + timedelta(milliseconds=index))
    return mtbridge_pb2.MtDealExecuted(
        user_id=str(client),
        server="mt5-live",
        login=100_000 + index % CLIENTS,
        deal=1_000_000 + index,
        position_id=5_000_000 + index,
        action=1,
        entry=1,
        symbol="EURUSD",
        volume_lots=f"{(index % 90 + 10) / 100:.2f}",  # from 0.10: every level earns a cent
        price="1.10000",
        profit="-3.20",
        commission="-1.00",
        swap="0",
        executed_at=stamp,
        currency="USD",
    ).SerializeToString()


async def prefill(js: JetStreamContext, clients: list[uuid.UUID], count: int) -> None:
    await ensure_stream(js, STREAM)
    occurred = datetime.now(UTC)
    for index in range(count):
        headers = nats_headers(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-deal-{index}")),
            event_type=mtbridge_pb2.MtDealExecuted.DESCRIPTOR.full_name,
            occurred_at=occurred,
            extra={},
        )
        await js.publish_async(
            SUBJECT, deal_message(index, clients[index % len(clients)]), headers=headers
        )
    await js.publish_async_completed()


async def raw_consume(js: JetStreamContext, count: int) -> float:
    """Seconds for a raw durable pull consumer to fetch and ack ``count`` messages."""
    config = ConsumerConfig(
        durable_name="bench-ib-raw",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=SUBJECT,
        max_ack_pending=BATCH * 4,
    )
    await js.add_consumer(STREAM.name, config)
    psub = await js.pull_subscribe_bind(durable="bench-ib-raw", stream=STREAM.name)
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count:
            try:
                messages = await psub.fetch(batch=BATCH, timeout=2)
            except TimeoutError:
                raise BenchError(f"raw consumer stalled at {seen}/{count}") from None
            for msg in messages:
                await msg.ack()
            seen += len(messages)
        return time.perf_counter() - started
    finally:
        await psub.unsubscribe()


async def deals_phase(ctx: BenchContext, count: int) -> list[Result]:
    async with ctx.database("bench_ib") as url, ctx.nats_client() as nc:
        js = nc.jetstream()
        await delete_streams(js)
        await migrate(url)
        conn = await asyncpg.connect(libpq_dsn(url))
        try:
            clients = [uuid.uuid4() for _ in range(CLIENTS)]
            await seed_network(conn, clients, chains=CHAINS, terms=plan_terms())
            await prefill(js, clients, count)
            spec = ib_spec(url, ctx.nats_server.url, BATCH)

            async def applied() -> int:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM inbox_events WHERE consumer = $1", BRIDGE_DURABLE
                    )
                )

            async with running_services(ctx, spec) as services:
                service = services["ib"]
                await wait_until(lambda: _positive(applied), within=60, what="the first deal")
                first, started = await applied(), time.perf_counter()

                async def done() -> bool:
                    service.check_alive()
                    return await applied() >= count

                with metered(service, postgres_processes(ctx)) as meter:
                    await wait_until(
                        done, within=patience(count, 300.0), what="every deal", poll=0.05
                    )
                seconds = time.perf_counter() - started
            rows = await conn.fetchval("SELECT count(*) FROM ledger")
            if rows != count * DEPTH:
                raise BenchError(f"expected {count * DEPTH} ledger rows, found {rows}")
            raw = await raw_consume(js, count)
        finally:
            await conn.close()
            await delete_streams(js)
    timed = count - first
    note(
        f"{count:,} closing deals, {CLIENTS:,} clients under {CHAINS} chains of {DEPTH}; "
        f"{timed:,} timed after the first ({first:,} applied before); "
        f"{timed * DEPTH / seconds:,.0f} ledger rows/s; batch {BATCH}; CPU while timed: "
        f"ib {meter.used['ib']:.1f}s, postgresql {meter.used['postgresql']:.1f}s "
        f"over {seconds:.1f}s"
    )
    return [
        throughput("raw_consume", "raw JetStream pull consume + ack", count, raw),
        throughput(
            "deals_to_ledger",
            "ib: deal events -> ledger rows (10-level chain)",
            timed,
            seconds,
            baseline="raw_consume",
        ),
    ]


async def _positive(probe) -> bool:  # type: ignore[no-untyped-def]
    return await probe() > 0


async def statements_phase(ctx: BenchContext, rows: int) -> list[Result]:
    partners = max(100, min(STATEMENT_PARTNERS, rows // 100))
    async with ctx.database("bench_ib_statements") as url:
        await migrate(url)
        conn = await asyncpg.connect(libpq_dsn(url))
        try:
            await conn.execute(
                "INSERT INTO partners (id, user_id, status, created_at)"
                " SELECT (lpad(to_hex(g), 32, '0'))::uuid, gen_random_uuid(), 'active', now()"
                " FROM generate_series(1, $1) g",
                partners,
            )
            await conn.execute(
                """
                INSERT INTO ledger (id, source_key, partner_id, rule_id, entry_kind, level,
                  client_user_id, server, deal, symbol, rule_kind, plan_id, plan_version, base,
                  rate, amount, currency, explanation, occurred_at, recorded_at)
                SELECT gen_random_uuid(), 'mt5-live:' || g,
                  (lpad(to_hex(1 + g % $2), 32, '0'))::uuid,
                  'fx-lot', 'accrual', 1 + g % 10, (lpad(to_hex(1 + g % ($2 * 5)), 32, 'a'))::uuid,
                  'mt5-live', g, (ARRAY['EURUSD','GBPUSD','XAUUSD'])[1 + g % 3], 'per_lot',
                  'bench', 1, 1, 3, round((g % 1000) / 100.0 + 0.01, 2), 'USD', '{}'::jsonb,
                  $3::timestamptz + (g % 2592000) * interval '1 second', now()
                FROM generate_series(1, $1) g
                """,
                rows,
                partners,
                datetime(2026, 10, 1, tzinfo=UTC),
            )
            await conn.execute("ANALYZE")
            end = datetime(2026, 11, 1, tzinfo=UTC)
            started = time.perf_counter()
            plain = await conn.fetch(
                "SELECT partner_id, currency, sum(amount), count(*) FROM ledger"
                " WHERE occurred_at < $1 GROUP BY partner_id, currency",
                end,
            )
            plain_seconds = time.perf_counter() - started
        finally:
            await conn.close()
        engine = create_engine(url, application_name="bench-ib")
        try:
            uow_factory = UnitOfWorkFactory(session_factory(engine), service="ib")
            started = time.perf_counter()
            async with uow_factory() as uow:
                made = await store.create_statements(
                    uow.session, datetime(2026, 10, 1, tzinfo=UTC), end, datetime.now(UTC), "bench"
                )
                await uow.commit()
            seconds = time.perf_counter() - started
        finally:
            await engine.dispose()
    if len(made) != len(plain):
        raise BenchError(f"{len(made)} statements for {len(plain)} partners")
    note(
        f"monthly statements: {rows:,} ledger rows, {partners:,} partners, {len(made):,} statements"
    )
    return [
        throughput(
            "plain_group_by", "plain SQL GROUP BY partner (ledger rows)", rows, plain_seconds
        ),
        throughput(
            "statements",
            "ib: statement run, items + totals (ledger rows)",
            rows,
            seconds,
            baseline="plain_group_by",
        ),
    ]


async def run(ctx: BenchContext) -> list[Result]:
    results = await deals_phase(ctx, ctx.scaled(DEALS, minimum=500))
    results += await statements_phase(ctx, ctx.scaled(STATEMENT_ROWS, minimum=10_000))
    return results
