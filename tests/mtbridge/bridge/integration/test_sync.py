"""Deal sync: deals of known accounts become events on NATS, once each, in order, and
the mirror answers ListDeals; a platform outage only delays them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import structlog
from nats.aio.client import Client as NATS
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipworks.common.v1 import pagination_pb2, payment_pb2
from pipworks.events.v1 import mtbridge_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.domain.deals import deal_event_id
from pipworks_mtbridge.mt5 import BalanceType
from tests.helpers import eventually
from tests.mtbridge.bridge.calls import client, dealer, deposit, open_account
from tests.mtbridge.bridge.support import (
    GROUP,
    SERVER,
    Bridge,
    Published,
    SimControl,
    running_bridge,
    stream_events,
)
from tests.tokens import TokenAuthority

DEALS = "pipworks.mtbridge.v1.deal.executed"
BALANCES = "pipworks.mtbridge.v1.balance.changed"


@pytest.fixture
async def syncing(
    database_url: str, nats_url: str, sim: SimControl, token_authority: TokenAuthority
) -> AsyncIterator[Bridge]:
    async with running_bridge(
        database_url, nats_url, sim.url, token_authority, relay=True, loops=True
    ) as running:
        yield running


async def funded_account(bridge: Bridge, authority: TokenAuthority, user: uuid.UUID) -> int:
    login = (await open_account(bridge.stub, authority, user)).account.login
    await deposit(bridge.stub, authority, login, "1000000", key=f"fund-{login}")
    return login


async def events_on(js: object, subject: str, count: int) -> list[Published]:
    return await eventually(
        lambda: stream_events(js, subject), until=lambda found: len(found) >= count, timeout=30
    )


async def test_a_bridge_deposit_event_names_its_operation_and_payment(
    syncing: Bridge, nats_client: NATS, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    login = (await open_account(syncing.stub, token_authority, user)).account.login
    card = payment_pb2.PaymentDetails(
        method="card", instrument_fingerprint="fp:4a1b", country_code="DE"
    )
    made = await deposit(
        syncing.stub, token_authority, login, "250", key=f"dep-{login}", payment=card
    )

    (published,) = await events_on(nats_client.jetstream(), BALANCES, 1)
    event = published.event
    assert isinstance(event, mtbridge_pb2.MtBalanceChanged)
    assert event.login == login
    assert event.operation_id == made.operation.operation_id
    assert event.operation_kind == mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT
    assert event.idempotency_key == f"dep-{login}"
    assert event.payment == card


async def test_deals_of_known_accounts_are_published_once_in_order(
    syncing: Bridge,
    sim: SimControl,
    nats_client: NATS,
    token_authority: TokenAuthority,
    span_exporter: InMemorySpanExporter,
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    logins = {alice: await funded_account(syncing, token_authority, alice)}
    logins[bob] = await funded_account(syncing, token_authority, bob)
    async with sim.manager() as manager:  # an account the bridge does not know
        stranger = await manager.add_user(
            group=GROUP,
            name="not ours",
            email="",
            leverage=100,
            password_main="Stranger-1x",
            password_investor="Stranger-2x",
        )
        await manager.trade_balance(stranger.login, BalanceType.BALANCE, Decimal(50000), "x")
    for login in (*logins.values(), stranger.login):
        await sim.post("/sim/deals", {"login": login, "count": 40})
    js = nats_client.jetstream()

    trades = await events_on(js, DEALS, 80)
    balances = await events_on(js, BALANCES, 2)
    assert len(trades) == 80
    assert len(balances) == 2
    by_login: dict[int, list[int]] = defaultdict(list)
    assert len({p.trace_id for p in trades}) == 80  # one trace per deal
    for published in trades:
        event = published.event
        assert isinstance(event, mtbridge_pb2.MtDealExecuted)
        assert published.event_id == str(deal_event_id(SERVER, event.deal))
        assert event.login != stranger.login
        assert event.user_id == str(alice if event.login == logins[alice] else bob)
        assert event.volume_lots
        assert "." in event.price
        assert event.currency == "USD"
        by_login[event.login].append(event.deal)
    assert all(tickets == sorted(tickets) for tickets in by_login.values())
    assert sorted(len(t) for t in by_login.values()) == [40, 40]
    operation_ids = {p.event.operation_id for p in balances}
    assert "" not in operation_ids
    assert len(operation_ids) == 2
    assert {p.event.amount for p in balances} == {"1000000.00"}

    # The mirror answers ListDeals, page by page, oldest first.
    seen: list[int] = []
    token = ""
    while True:
        page = await syncing.stub.ListDeals(
            pb.ListDealsRequest(page=pagination_pb2.PageRequest(page_size=7, page_token=token)),
            metadata=client(token_authority, alice, aal=1),
        )
        seen += [d.ticket for d in page.deals]
        assert all(d.login == logins[alice] for d in page.deals)
        token = page.page.next_page_token
        if not token:
            break
    assert seen == sorted(seen)
    assert len(seen) == 41
    assert set(by_login[logins[alice]]) < set(seen)


async def test_sync_resumes_where_it_stopped_after_a_platform_outage(
    syncing: Bridge,
    sim_process: Mt5SimProcess,
    sim: SimControl,
    nats_client: NATS,
    token_authority: TokenAuthority,
) -> None:
    user = uuid.uuid4()
    login = await funded_account(syncing, token_authority, user)
    await sim.post("/sim/deals", {"login": login, "count": 10})
    js = nats_client.jetstream()
    await events_on(js, DEALS, 10)
    sim_process.stop()  # the state file keeps the deals
    await eventually(lambda: syncing.scalar("SELECT count(*) FROM deals"), until=lambda n: n == 11)
    sim_process.start()
    await SimControl(sim_process).post("/sim/deals", {"login": login, "count": 15})
    trades = await events_on(js, DEALS, 25)
    assert len(trades) == 25
    assert len({p.event_id for p in trades}) == 25


async def test_positions_are_read_live(
    syncing: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    login = await funded_account(syncing, token_authority, user)
    for symbol in ("EURUSD", "GBPUSD", "USDJPY"):
        await sim.post(
            "/sim/positions", {"login": login, "symbol": symbol, "action": "buy", "volume": "0.1"}
        )
    listed = await syncing.stub.ListPositions(
        pb.ListPositionsRequest(page=pagination_pb2.PageRequest(page_size=2)),
        metadata=client(token_authority, user, aal=1),
    )
    assert len(listed.positions) == 2
    assert listed.page.next_page_token
    rest = await syncing.stub.ListPositions(
        pb.ListPositionsRequest(
            page=pagination_pb2.PageRequest(page_size=2, page_token=listed.page.next_page_token)
        ),
        metadata=client(token_authority, user, aal=1),
    )
    positions = [*listed.positions, *rest.positions]
    assert {p.symbol for p in positions} == {"EURUSD", "GBPUSD", "USDJPY"}
    assert all(p.volume == "0.1" and p.action == pb.DEAL_ACTION_BUY for p in positions)
    assert not rest.page.next_page_token
    staff = await syncing.stub.ListPositions(
        pb.ListPositionsRequest(server=SERVER, login=login), metadata=dealer(token_authority)
    )
    assert len(staff.positions) == 3


async def test_a_pass_that_publishes_deals_says_so_in_the_log(
    syncing: Bridge, nats_client: NATS, token_authority: TokenAuthority
) -> None:
    with structlog.testing.capture_logs() as logs:
        login = (await open_account(syncing.stub, token_authority, uuid.uuid4())).account.login
        await deposit(syncing.stub, token_authority, login, "75", key=f"log-{login}")
        await eventually(
            lambda: _async(
                [e for e in logs if e["event"] == "deals published" and e["server"] == SERVER]
            ),
            timeout=30,
        )
    published = [e for e in logs if e["event"] == "deals published"]
    assert published[0]["deals"] >= 1
    assert published[0]["log_level"] == "info"


async def _async(value: object) -> object:
    return value
