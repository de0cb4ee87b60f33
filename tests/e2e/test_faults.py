"""Crashes lose nothing and apply nothing twice: deals stream from the trading server while
the bridge, the IB service, anti-fraud, nats-server and PostgreSQL are each killed with
SIGKILL and restarted, and afterwards the books are exact.

The 20,000 deals come in five waves, one per victim, so every crash lands mid-stream
however slowly the machine restarts a service: each victim dies after 1,000 deals of its
wave and stays down two seconds while the wave goes on. Only the waves trade: the
simulator's ambient trading is stopped first, and after the last wave every position is
closed so that its price ticks stop forcing stop-outs (those are priced like any close).

Set-up goes through the gateway as the broker's staff would (``broker``): a
ten-level IB chain on a plan with per-lot and commission-share rules, clients referred by
the deepest IB with funded live accounts. Anti-fraud rules that restrict clients are put
in shadow mode first: a restricted client gets no new deals, which would make the deal
count depend on scoring; shadow rules still evaluate every event, which the test counts.

After the stream has drained the test checks, against the simulator's own deal history
read over the MT5 Web API: every deal mirrored by the bridge, recorded by the IB service
and evaluated by anti-fraud exactly once; the ledger equal, row by row and in total per
partner, to an independent pricing (``_faults_ledger``); every durable consumer caught up
with nothing awaiting acknowledgement, every outbox published, nothing dead-lettered; and
every service SERVING.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from pipworks_devstack.local_suite import LocalSuite
from pipworks_mtbridge.domain.deals import deal_event_id
from tests.e2e import probes
from tests.e2e._faults_ledger import expected_rows, flatten, server_deals, totals
from tests.e2e.broker import SERVER, Broker, set_up_broker
from tests.harness import sql
from tests.helpers import eventually

pytestmark = [
    pytest.mark.xdist_group("e2e-faults"),
    pytest.mark.slow,
    pytest.mark.timeout(600),
]

DEALS = 20_000
WAVE_DEALS_PER_SECOND = 250
KILL_AFTER = 1_000  # deals into a wave: the crash lands mid-stream, with deals in flight
OUTAGE_SECONDS = 2.0  # how long each victim stays down
DRAIN_TIMEOUT = 240.0
# The bridge's mirror also holds balance deals (the deposits).
MIRRORED_TRADES = "SELECT count(*) FROM deals WHERE action IN (0, 1)"


def _activity(suite: LocalSuite, activity_id: int) -> dict:
    return suite.sim_control("GET", f"/sim/activity/{activity_id}")["answer"]


async def _activity_until(
    suite: LocalSuite, activity_id: int, until: Callable[[dict], bool], timeout: float
) -> dict:
    return await eventually(
        lambda: asyncio.to_thread(_activity, suite, activity_id),
        until=until,
        timeout=timeout,
        interval=0.2,
    )


async def _wave_with_a_crash(
    suite: LocalSuite,
    logins: list[int],
    count: int,
    kill: Callable[[], None],
    start: Callable[[], None],
) -> tuple[int, int]:
    """Stream ``count`` deals and crash a victim in the middle of them: killed after
    ``KILL_AFTER`` deals, down for ``OUTAGE_SECONDS``, restarted (and waited for) while
    the wave goes on. Returns the deals produced before the crash and during the outage.
    """
    wave = suite.sim_control(
        "POST",
        "/sim/activity",
        {"logins": logins, "deals_per_second": WAVE_DEALS_PER_SECOND, "count": count},
    )["answer"]
    at_kill = await _activity_until(
        suite, wave["id"], lambda a: a["produced"] >= KILL_AFTER, timeout=60
    )
    kill()
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a condition
    during = _activity(suite, wave["id"])["produced"] - at_kill["produced"]
    await asyncio.to_thread(start)
    done = await _activity_until(
        suite, wave["id"], lambda a: not a["running"], timeout=2 * count / WAVE_DEALS_PER_SECOND
    )
    assert done["produced"] == count, done
    return at_kill["produced"], during


def _faults(suite: LocalSuite) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    def service(name: str) -> tuple[str, Callable[[], None], Callable[[], None]]:
        return name, lambda: suite.kill(name), lambda: suite.start(name)

    return [
        service("mtbridge"),
        service("ib"),
        service("antifraud"),
        ("nats-server", suite.nats.kill, suite.nats.start),
        ("postgresql", suite.postgres.kill, suite.postgres.start),
    ]


async def _drained(suite: LocalSuite, trades: int) -> dict[str, object]:
    """Where the pipeline stands; ``done`` once every deal is through and nothing waits."""
    mirrored = (await sql(suite.database_url("mtbridge"), MIRRORED_TRADES))[0][0]
    recorded = (await sql(suite.database_url("ib"), "SELECT count(*) FROM client_deals"))[0][0]
    evaluated = (
        await sql(
            suite.database_url("antifraud"),
            "SELECT count(*) FROM evaluated_events WHERE kind = 'TRADE'",
        )
    )[0][0]
    busy = [c for c in await probes.consumers(suite.nats.url) if not c.idle]
    backlog = {k: v for k, v in (await probes.unpublished_outbox(suite)).items() if v}
    state = {
        "trades": trades,
        "mirrored": mirrored,
        "ib": recorded,
        "antifraud": evaluated,
        "busy": busy,
        "outbox": backlog,
    }
    state["done"] = mirrored == recorded == evaluated == trades and not busy and not backlog
    return state


async def test_crashes_of_every_part_lose_and_double_nothing(full_suite: LocalSuite) -> None:
    suite = full_suite
    # Only the waves below trade: the simulator's ambient trading (if any) stops.
    suite.sim_control("DELETE", "/sim/activity")
    broker: Broker = await asyncio.to_thread(
        set_up_broker, suite.gateway, suite.admin_email, suite.admin_password
    )
    logins = sorted(broker.clients)
    clients = set(broker.clients.values())
    # The IB knows each client's partner and logins before the first deal.
    await eventually(
        lambda: sql(
            suite.database_url("ib"),
            "SELECT (SELECT count(*) FROM attributions WHERE client_user_id::text = ANY($1)),"
            " (SELECT count(*) FROM trading_logins WHERE login = ANY($2))",
            list(clients),
            logins,
        ),
        until=lambda rows: tuple(rows[0]) == (len(clients), len(logins)),
        timeout=60,
    )

    started = time.monotonic()
    faults = _faults(suite)
    crashes: dict[str, tuple[int, int]] = {}
    for name, kill, start in faults:
        crashes[name] = await _wave_with_a_crash(suite, logins, DEALS // len(faults), kill, start)
    # Every victim went down with deals streaming before and during its outage.
    assert all(before >= KILL_AFTER and during > 0 for before, during in crashes.values()), crashes

    await flatten(suite, logins)
    deals = await server_deals(suite, logins)
    assert len(deals) >= DEALS  # with the stop-outs the server forced and the closes above
    state = await eventually(
        lambda: _drained(suite, len(deals)),
        until=lambda s: s["done"],
        timeout=DRAIN_TIMEOUT,
        interval=1.0,
    )
    drained_after = time.monotonic() - started

    # Every deal exactly once in the bridge's mirror, the IB's deal book and anti-fraud.
    tickets = sorted(d.ticket for d in deals)
    for database, query in (
        (
            "mtbridge",
            "SELECT ticket FROM deals WHERE action IN (0, 1) AND server = $1 ORDER BY ticket",
        ),
        ("ib", "SELECT ticket FROM client_deals WHERE server = $1 ORDER BY ticket"),
    ):
        rows = await sql(suite.database_url(database), query, SERVER)
        assert [r["ticket"] for r in rows] == tickets, database
    evaluated = await sql(
        suite.database_url("antifraud"),
        "SELECT event_id FROM evaluated_events WHERE kind = 'TRADE'",
    )
    assert sorted(r["event_id"] for r in evaluated) == sorted(
        deal_event_id(SERVER, t) for t in tickets
    )

    # The ledger: exactly the rows the plan gives, once each, to the cent.
    expected = expected_rows(deals, broker.chain)
    ledger = await sql(
        suite.database_url("ib"),
        "SELECT source_key, partner_id::text AS partner, rule_id, amount, entry_kind, hold_id"
        " FROM ledger",
    )
    keys = [(r["source_key"], r["partner"], r["rule_id"]) for r in ledger]
    assert len(keys) == len(set(keys)), "a (deal, partner, rule) accrued twice"
    assert {r["entry_kind"] for r in ledger} == {"accrual"}
    assert all(r["hold_id"] is None for r in ledger)
    actual = {key: Decimal(r["amount"]) for key, r in zip(keys, ledger, strict=True)}
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    assert not missing, (len(missing), sorted(missing)[:5])
    assert not extra, (len(extra), sorted(extra)[:5])
    wrong = {k: (actual[k], v) for k, v in expected.items() if actual[k] != v}
    assert not wrong, list(wrong.items())[:5]
    assert totals(actual) == totals(expected)
    assert set(totals(expected)) == set(broker.chain)  # every level earned something

    # Nothing waits anywhere, nothing was parked, and every service is healthy.
    consumers = await probes.consumers(suite.nats.url)
    assert {c.durable for c in consumers} >= {
        "ib-mtbridge",
        "ib-identity",
        "ib-antifraud",
        "antifraud-mtbridge",
        "antifraud-identity",
    }
    assert [c for c in consumers if not c.idle] == []
    assert await probes.dead_letters(suite.nats.url) == []
    assert set((await probes.unpublished_outbox(suite)).values()) == {0}
    statuses = probes.health(suite)
    assert set(statuses.values()) == {"SERVING"}, statuses
    assert state["done"]
    print(f"faults: {len(deals)} deals streamed and drained in {drained_after:.1f}s; {crashes}")
