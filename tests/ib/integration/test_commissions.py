"""Deals from the bridge through JetStream to ledger rows, against an independent
recomputation, with redelivery, plan versions, the lifetime rule and CPA."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipworks.events.v1 import mtbridge_pb2
from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks_ib.adapters import store
from tests.ib.plans_fixture import reference_deal
from tests.ib.support import SERVER, Ib, deal_event, deal_event_id, standard_terms, ts

IN, OUT = 0, 1


async def chain_of(ib: Ib, depth: int, plan_id: str) -> list[pb.Partner]:
    """Partners root → leaf; the root carries the plan."""
    partners = [await ib.create_partner(plan_id=plan_id)]
    for _ in range(depth - 1):
        partners.append(await ib.create_partner(parent=partners[-1].partner_id))
    return partners


async def ledger(ib: Ib) -> dict[tuple[str, int, str, int], Decimal]:
    rows = await ib.sql(
        "SELECT partner_id, level, rule_id, deal, amount FROM ledger WHERE entry_kind = 'accrual'"
    )
    return {(str(r["partner_id"]), r["level"], r["rule_id"], r["deal"]): r["amount"] for r in rows}


async def trade(
    ib: Ib, client: uuid.UUID, position: int, opened: datetime, held: timedelta, **kw: str
) -> list[mtbridge_pb2.MtDealExecuted]:
    events = [
        deal_event(client, position * 10, position, IN, opened, **kw),
        deal_event(client, position * 10 + 1, position, OUT, opened + held, **kw),
    ]
    for event in events:
        await ib.publish(event, deal_event_id(event))
    return events


async def test_a_ten_level_chain_is_paid_to_the_cent_and_redelivery_adds_nothing(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    partners = await chain_of(ib, 10, "std")
    client = uuid.uuid4()
    await ib.refer(partners[-1], client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    published = []
    symbols = [("EURUSD", "1.30", "-4.55"), ("XAUUSD", "0.07", "-0.35"), ("GBPUSD", "2.00", "0")]
    for i, (symbol, volume, commission) in enumerate(symbols * 3):
        published += await trade(
            ib,
            client,
            100 + i,
            start + timedelta(minutes=i),
            timedelta(minutes=5),
            symbol=symbol,
            volume=volume,
            commission=commission,
        )
    await ib.wait_inbox("ib-mtbridge", len(published))
    chain = [p.partner_id for p in reversed(partners)]  # level 1 is the client's own IB
    expected: dict[tuple[str, int, str, int], Decimal] = {}
    for i, (symbol, volume, commission) in enumerate(symbols * 3):
        for row in reference_deal(
            chain, symbol, Decimal(volume), Decimal(commission), Decimal(commission)
        ):
            expected[(row.partner_id, row.level, row.rule_id, (100 + i) * 10 + 1)] = row.amount
    assert await ledger(ib) == expected
    before = await ib.ledger_count()
    accrued = await ib.outbox("IbCommissionAccrued")
    assert len(accrued) == 9  # one event per closing deal, every row of the deal in it
    assert sum(len(e.accruals) for e in accrued) == before

    for event in published:  # the same deals again: same ids, and under fresh ids
        await ib.publish(event, deal_event_id(event))
        await ib.publish(event, str(uuid.uuid4()))
    await ib.wait_inbox("ib-mtbridge", 2 * len(published))
    assert await ib.ledger_count() == before
    assert await ledger(ib) == expected
    assert len(await ib.outbox("IbCommissionAccrued")) == 9


async def test_a_thousand_partner_random_tree_matches_the_recomputation(ib: Ib) -> None:
    rng = random.Random(20261124)
    await ib.create_plan("std", standard_terms())
    shape = [None] + [rng.randrange(i) if rng.random() < 0.97 else None for i in range(1, 1000)]
    depth_of: list[int] = []
    for parent_index in shape:
        depth_of.append(0 if parent_index is None else depth_of[parent_index] + 1)
    # The tree goes in through the store's own closure-table insert, in one transaction
    # (CreatePartner does the same per call, plus its audit entry).
    made: dict[int, pb.Partner] = {}
    async with ib.deps.uow() as uow:
        for i, parent_index in enumerate(shape):
            partner_id, user_id = uuid.uuid4(), uuid.uuid4()
            parent = None if parent_index is None else uuid.UUID(made[parent_index].partner_id)
            plan = "std" if parent is None else None
            await store.insert_partner(
                uow.session, partner_id, user_id, parent, "active", plan, datetime.now(UTC)
            )
            made[i] = pb.Partner(partner_id=str(partner_id), user_id=str(user_id))
        await uow.commit()
    order = [made[i] for i in range(1000)]
    parents: dict[str, str | None] = {
        made[i].partner_id: None if shape[i] is None else made[shape[i]].partner_id
        for i in range(1000)
    }
    assert await ib.scalar("SELECT count(*) FROM partners") == 1000

    def chain(partner_id: str) -> list[str]:
        found: list[str] = []
        current: str | None = partner_id
        while current is not None:
            found.append(current)
            current = parents[current]
        return found

    start = datetime.now(UTC) + timedelta(minutes=1)
    expected: dict[tuple[str, int, str, int], Decimal] = {}
    clients = []
    for _ in range(60):
        owner = rng.choice(order)
        client = uuid.uuid4()
        await ib.refer(owner, client)
        clients.append((client, owner.partner_id))
    await ib.wait_inbox("ib-identity", len(clients))
    events = 0
    for index, (client, owner) in enumerate(clients):
        volume = f"{rng.randint(1, 500) / 100:.2f}"
        commission = f"-{rng.randint(0, 900) / 100:.2f}"
        await trade(
            ib,
            client,
            1000 + index,
            start,
            timedelta(minutes=3),
            volume=volume,
            commission=commission,
        )
        events += 2
        for row in reference_deal(
            chain(owner), "EURUSD", Decimal(volume), Decimal(commission), Decimal(commission)
        ):
            expected[(row.partner_id, row.level, row.rule_id, (1000 + index) * 10 + 1)] = row.amount
    await ib.wait_inbox("ib-mtbridge", events)
    assert await ledger(ib) == expected
    depth = max(len(chain(p.partner_id)) for p in order)
    assert depth > 10  # the tree is deeper than the plan's levels


async def test_a_plan_version_effective_tomorrow_leaves_today_alone(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    (partner,) = await chain_of(ib, 1, "std")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    richer = standard_terms()
    richer.rules[0].rate = "9"  # fx-lot: 7 -> 9 per lot
    made = await ib.stub.CreatePlanVersion(
        pb.CreatePlanVersionRequest(plan_id="std", terms=richer, effective_from=ts(tomorrow)),
        metadata=ib.admin(),
    )
    assert made.version.version == 2
    client = uuid.uuid4()
    await ib.refer(partner, client)
    await ib.wait_inbox("ib-identity", 1)
    today = datetime.now(UTC) + timedelta(minutes=1)
    await trade(ib, client, 1, today, timedelta(minutes=2), commission="0")
    await trade(ib, client, 2, tomorrow + timedelta(hours=1), timedelta(minutes=2), commission="0")
    await ib.wait_inbox("ib-mtbridge", 4)
    rows = await ib.sql(
        "SELECT deal, plan_version, amount FROM ledger WHERE rule_id = 'fx-lot' ORDER BY deal"
    )
    assert [(r["deal"], r["plan_version"], r["amount"]) for r in rows] == [
        (11, 1, Decimal("2.80")),  # 1 lot x 7 x 40%
        (21, 2, Decimal("3.60")),  # 1 lot x 9 x 40%
    ]


async def test_short_lived_positions_earn_nothing(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    (partner,) = await chain_of(ib, 1, "std")
    client = uuid.uuid4()
    await ib.refer(partner, client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    await trade(ib, client, 1, start, timedelta(seconds=59))
    await trade(ib, client, 2, start, timedelta(seconds=60))
    await ib.wait_inbox("ib-mtbridge", 4)
    assert {r["deal"] for r in await ib.sql("SELECT deal FROM ledger")} == {21}


async def test_cpa_is_paid_once_on_the_first_qualifying_deposit(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    root, child = await chain_of(ib, 2, "std")
    client = uuid.uuid4()
    await ib.refer(child, client)
    await ib.wait_inbox("ib-identity", 1)
    at = datetime.now(UTC) + timedelta(minutes=1)
    for ticket, amount in ((1, "100.00"), (2, "750.00"), (3, "5000.00")):
        await ib.publish(
            mtbridge_pb2.MtBalanceChanged(
                user_id=str(client),
                server=SERVER,
                login=9,
                deal=ticket,
                action=2,
                amount=amount,
                currency="USD",
                executed_at=ts(at),
                operation_kind=mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT,
            )
        )
    await ib.wait_inbox("ib-mtbridge", 3)
    rows = await ib.sql(
        "SELECT partner_id, level, amount, facts FROM ledger JOIN ledger_facts USING (source_key)"
        " ORDER BY level"
    )
    assert [(str(r["partner_id"]), r["level"], r["amount"]) for r in rows] == [
        (child.partner_id, 1, Decimal("80.00")),
        (root.partner_id, 2, Decimal("40.00")),
    ]
    assert '"deposit_deal": "mt5-live:2"' in rows[0]["facts"]
    stats = await ib.stub.GetLinkStats(pb.GetLinkStatsRequest(), metadata=ib.as_ib(child.user_id))
    assert [(s.registrations, s.funded) for s in stats.stats] == [(1, 1)]


async def test_sums_per_partner_match_the_portal_summary(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    partners = await chain_of(ib, 3, "std")
    client = uuid.uuid4()
    await ib.refer(partners[-1], client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    for i in range(4):
        await trade(
            ib, client, i + 1, start, timedelta(minutes=10), symbol=("EURUSD", "XAUUSD")[i % 2]
        )
    await ib.wait_inbox("ib-mtbridge", 8)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in await ib.sql(
        "SELECT symbol, amount FROM ledger WHERE partner_id = $1", uuid.UUID(partners[0].partner_id)
    ):
        totals[r["symbol"]] += r["amount"]
    summary = await ib.stub.SummarizeCommissions(
        pb.SummarizeCommissionsRequest(dimension=pb.SUMMARY_DIMENSION_SYMBOL),
        metadata=ib.as_ib(partners[0].user_id),
    )
    assert {line.key: Decimal(line.amount) for line in summary.lines} == dict(totals)
    listed = await ib.stub.ListCommissions(
        pb.ListCommissionsRequest(page={"page_size": 3}), metadata=ib.as_ib(partners[0].user_id)
    )
    assert len(listed.entries) == 3
    assert listed.page.next_page_token
    entry = listed.entries[0]
    assert entry.level == 3
    assert list(entry.explanation["chain"]) == [p.partner_id for p in reversed(partners)]


async def test_an_opening_seen_twice_counts_once(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    (partner,) = await chain_of(ib, 1, "std")
    client = uuid.uuid4()
    await ib.refer(partner, client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    opening = deal_event(client, 10, 1, IN, start, volume="2.00", commission="-6")
    await ib.publish(opening, deal_event_id(opening))
    await ib.publish(opening, str(uuid.uuid4()))  # the same deal under another event id
    closing = deal_event(
        client, 11, 1, OUT, start + timedelta(minutes=5), volume="1.00", commission="-3"
    )
    await ib.publish(closing, deal_event_id(closing))
    await ib.wait_inbox("ib-mtbridge", 3)
    (row,) = await ib.sql("SELECT base, amount FROM ledger WHERE rule_id = 'commission'")
    # 3 on the close + half of the opening's 6: the opening counted once, not twice.
    assert (row["base"], row["amount"]) == (Decimal(6), Decimal("0.72"))
    assert await ib.scalar("SELECT volume FROM positions") == Decimal(2)
