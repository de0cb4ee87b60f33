"""Holds and reversals, statements and payouts, scoping, and bad input."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from pipworks.events.v1 import antifraud_pb2, identity_pb2, mtbridge_pb2
from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks_platform.audit import check_chain
from pipworks_platform.grpc_errors import error_details
from tests.helpers import eventually
from tests.ib.integration.test_commissions import chain_of, trade
from tests.ib.support import SERVER, Ib, deal_event, running_ib, standard_terms, ts
from tests.tokens import TokenAuthority


async def fails(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    details = error_details(raised.value)
    return details.code, details.reason


async def referred_client(ib: Ib, depth: int = 2) -> tuple[list[pb.Partner], uuid.UUID]:
    await ib.create_plan("std", standard_terms())
    partners = await chain_of(ib, depth, "std")
    client = uuid.uuid4()
    await ib.refer(partners[-1], client)
    await ib.wait_inbox("ib-identity", 1)
    return partners, client


async def payable(ib: Ib, partner: pb.Partner) -> Decimal:
    return Decimal(
        await ib.scalar(
            "SELECT coalesce(sum(l.amount), 0) FROM ledger l LEFT JOIN holds h ON h.id = l.hold_id"
            " WHERE l.partner_id = $1 AND (l.hold_id IS NULL OR h.resolution = 'released')",
            uuid.UUID(partner.partner_id),
        )
    )


async def test_restricted_clients_accrue_held_then_confirmed_fraud_reverses(ib: Ib) -> None:
    partners, client = await referred_client(ib)
    start = datetime.now(UTC) + timedelta(minutes=1)
    await trade(ib, client, 1, start, timedelta(minutes=5))
    await ib.wait_inbox("ib-mtbridge", 2)
    clean = await ib.ledger_count()
    await ib.publish(
        antifraud_pb2.AntifraudClientRestricted(
            user_id=str(client),
            trading=True,
            case_id="case-1",
            restriction_id="r-1",
            occurred_at=ts(start + timedelta(minutes=10)),
        )
    )
    await ib.wait_inbox("ib-antifraud", 1)
    await trade(ib, client, 2, start + timedelta(minutes=20), timedelta(minutes=5))
    await ib.wait_inbox("ib-mtbridge", 4)
    held = await ib.sql("SELECT id, amount FROM ledger WHERE hold_id IS NOT NULL")
    assert len(held) == await ib.ledger_count() - clean > 0
    before = await payable(ib, partners[-1])
    listed = await ib.stub.ListCommissions(
        pb.ListCommissionsRequest(), metadata=ib.as_ib(partners[-1].user_id)
    )
    assert pb.HOLD_STATE_HELD in {e.hold for e in listed.entries}

    resolved = antifraud_pb2.AntifraudCaseResolved(
        case_id="case-1",
        user_id=str(client),
        resolution=antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_CONFIRMED,
    )
    await ib.publish(resolved)
    await ib.publish(resolved)  # the same fact twice: reversed once
    await ib.wait_inbox("ib-antifraud", 3)
    reversals = await ib.sql("SELECT reverses, amount FROM ledger WHERE entry_kind = 'reversal'")
    assert {(r["reverses"], r["amount"]) for r in reversals} == {
        (r["id"], -r["amount"]) for r in held
    }
    assert await payable(ib, partners[-1]) == before  # held rows were never payable
    (event,) = await ib.outbox("IbCommissionReversed")
    assert event.reason == "FRAUD_CONFIRMED"
    assert len(event.reversals) == len(held)


async def test_a_false_positive_releases_held_commissions(ib: Ib) -> None:
    partners, client = await referred_client(ib, depth=1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    await ib.publish(
        antifraud_pb2.AntifraudClientRestricted(
            user_id=str(client), case_id="case-2", restriction_id="r-2", occurred_at=ts(start)
        )
    )
    await ib.wait_inbox("ib-antifraud", 1)
    await trade(ib, client, 1, start + timedelta(minutes=1), timedelta(minutes=5))
    await ib.wait_inbox("ib-mtbridge", 2)
    assert await payable(ib, partners[0]) == 0
    total = Decimal(await ib.scalar("SELECT sum(amount) FROM ledger"))
    await ib.publish(
        antifraud_pb2.AntifraudCaseResolved(
            case_id="case-2",
            user_id=str(client),
            resolution=antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_FALSE_POSITIVE,
        )
    )
    await eventually(lambda: payable(ib, partners[0]), until=lambda v: v == total)
    assert await ib.scalar("SELECT count(*) FROM ledger WHERE entry_kind = 'reversal'") == 0


async def test_statement_approval_pays_out_through_the_bridge_once(ib: Ib) -> None:
    partners, client = await referred_client(ib, depth=1)
    (partner,) = partners
    start = datetime.now(UTC) + timedelta(seconds=1)
    await trade(ib, client, 1, start, timedelta(minutes=1))
    await ib.wait_inbox("ib-mtbridge", 2)
    await ib.publish(
        mtbridge_pb2.MtAccountOpened(
            user_id=partner.user_id,
            server=SERVER,
            login=880001,
            currency="USD",
            opened_at=ts(start),
        )
    )
    await ib.wait_inbox("ib-mtbridge", 3)
    period_end = start + timedelta(minutes=2)
    admin = ib.admin()
    # The period has not ended yet ("now" is before the deals' close).
    code, reason = await fails(
        ib.stub.CreateStatement(
            pb.CreateStatementRequest(
                partner_id=partner.partner_id,
                period_start=ts(start - timedelta(days=30)),
                period_end=ts(period_end + timedelta(days=1)),
            ),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PERIOD_NOT_ENDED")
    ib.deps.clock = lambda: period_end + timedelta(minutes=1)
    made = await ib.stub.CreateStatement(
        pb.CreateStatementRequest(
            partner_id=partner.partner_id,
            period_start=ts(start - timedelta(days=30)),
            period_end=ts(period_end),
        ),
        metadata=admin,
    )
    statement = made.statement
    total = Decimal(await ib.scalar("SELECT sum(amount) FROM ledger"))
    assert Decimal(statement.total) == total > 0
    assert statement.total == f"{total:.2f}"  # at the currency's precision, not the column's
    assert all(len(line.amount.partition(".")[2]) == 2 for line in statement.by_symbol)
    assert statement.status == pb.STATEMENT_STATUS_DRAFT
    assert [line.key for line in statement.by_level] == ["1"]
    assert sum(Decimal(line.amount) for line in statement.by_symbol) == total

    code, reason = await fails(
        ib.stub.ApproveStatement(
            pb.ApproveStatementRequest(
                statement_id=statement.statement_id, server=SERVER, login=999, idempotency_key="k"
            ),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_NOT_PARTNERS")
    request = pb.ApproveStatementRequest(
        statement_id=statement.statement_id, server=SERVER, login=880001, idempotency_key="pay-1"
    )
    approved = (await ib.stub.ApproveStatement(request, metadata=admin)).statement
    again = (await ib.stub.ApproveStatement(request, metadata=admin)).statement
    assert approved.status == again.status == pb.STATEMENT_STATUS_APPROVED
    assert approved.payout_id == again.payout_id
    (payout,) = await ib.outbox("IbPayoutApproved")
    assert (payout.payout_id, payout.login, Decimal(payout.amount), payout.user_id) == (
        approved.payout_id,
        880001,
        total,
        partner.user_id,
    )
    await ib.publish(
        mtbridge_pb2.MtBalanceChanged(
            user_id=partner.user_id,
            server=SERVER,
            login=880001,
            deal=5,
            action=2,
            amount=payout.amount,
            currency="USD",
            executed_at=ts(period_end),
            operation_kind=mtbridge_pb2.MT_OPERATION_KIND_IB_PAYOUT,
            idempotency_key=f"ib-payout:{payout.payout_id}",
        )
    )
    await ib.wait_inbox("ib-mtbridge", 4)
    listed = await ib.stub.ListStatements(
        pb.ListStatementsRequest(), metadata=ib.as_ib(partner.user_id)
    )
    assert [(s.status, s.payout_id) for s in listed.statements] == [
        (pb.STATEMENT_STATUS_PAID, payout.payout_id)
    ]
    # A listed statement carries the same lines as the created one.
    (listed_statement,) = listed.statements
    for lines in ("by_client", "by_symbol", "by_level"):
        assert list(getattr(listed_statement, lines)) == list(getattr(statement, lines))
    # Everything stated is in one statement only: a second period finds nothing new.
    code, reason = await fails(
        ib.stub.CreateStatement(
            pb.CreateStatementRequest(
                partner_id=partner.partner_id,
                period_start=ts(period_end),
                period_end=ts(period_end + timedelta(seconds=30)),
            ),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOTHING_TO_STATE")
    actions = [r["action"] for r in await ib.sql("SELECT action FROM audit_log ORDER BY sequence")]
    assert actions[-2:] == ["ib.statement.created", "ib.statement.approved"]
    assert (await check_chain(ib.deps.uow)).intact


async def test_an_ib_sees_only_its_own_subtree(ib: Ib) -> None:
    (root, child), client = await referred_client(ib)
    other = await ib.create_partner()
    stranger_client = uuid.uuid4()
    await ib.refer(other, stranger_client)
    await ib.wait_inbox("ib-identity", 2)
    mine = await ib.stub.ListMyClients(pb.ListMyClientsRequest(), metadata=ib.as_ib(child.user_id))
    assert [c.client_user_id for c in mine.clients] == [str(client)]
    # The root may look into its sub-IB, the sub-IB not into its root, nobody into a stranger.
    below = await ib.stub.ListMyClients(
        pb.ListMyClientsRequest(partner_id=child.partner_id), metadata=ib.as_ib(root.user_id)
    )
    assert [c.client_user_id for c in below.clients] == [str(client)]
    for viewer, target in ((child, root), (root, other), (other, child)):
        code, reason = await fails(
            ib.stub.ListMyClients(
                pb.ListMyClientsRequest(partner_id=target.partner_id),
                metadata=ib.as_ib(viewer.user_id),
            )
        )
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PARTNER_NOT_IN_SUBTREE")
    code, _ = await fails(
        ib.stub.ListMyClients(
            pb.ListMyClientsRequest(partner_id=str(uuid.uuid4())), metadata=ib.as_ib(child.user_id)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED  # permission before existence
    subs = await ib.stub.ListSubPartners(
        pb.ListSubPartnersRequest(), metadata=ib.as_ib(root.user_id)
    )
    assert [(s.partner.partner_id, s.relative_depth, s.clients) for s in subs.partners] == [
        (child.partner_id, 1, 1)
    ]
    staff = ib.authority.metadata(subject=str(uuid.uuid4()), roles=("support",))
    seen = await ib.stub.ListMyClients(
        pb.ListMyClientsRequest(partner_id=other.partner_id), metadata=staff
    )
    assert [c.client_user_id for c in seen.clients] == [str(stranger_client)]


async def test_tree_moves_are_set_based_audited_and_refuse_cycles(ib: Ib) -> None:
    a, b, c = await chain_of(ib, 3, "")
    d = await ib.create_partner()
    admin = ib.admin()
    code, reason = await fails(
        ib.stub.MovePartner(
            pb.MovePartnerRequest(partner_id=a.partner_id, new_parent_partner_id=c.partner_id),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TREE_CYCLE")
    tree_before = await ib.sql("SELECT * FROM partner_tree ORDER BY 1, 2")
    moved = await ib.stub.MovePartner(
        pb.MovePartnerRequest(
            partner_id=b.partner_id, new_parent_partner_id=d.partner_id, reason="merger"
        ),
        metadata=admin,
    )
    assert (moved.moved, moved.partner.parent_partner_id, moved.partner.depth) == (
        2,
        d.partner_id,
        1,
    )
    depths = {
        (str(r["ancestor_id"]), str(r["descendant_id"])): r["depth"]
        for r in await ib.sql("SELECT * FROM partner_tree")
    }
    assert depths[(d.partner_id, c.partner_id)] == 2
    assert (a.partner_id, c.partner_id) not in depths
    assert len(depths) == len(tree_before)  # a:a, b:b, c:c, d:d, d:b, d:c, b:c
    (entry,) = await ib.sql("SELECT details FROM audit_log WHERE action = 'ib.partner.moved'")
    assert json.loads(entry["details"])["old_parent_partner_id"] == a.partner_id


async def test_bad_plans_are_refused_and_nothing_is_written(ib: Ib) -> None:
    admin = ib.admin()
    over = standard_terms()
    over.levels[0].percent = "95"
    negative = standard_terms()
    negative.rules[0].rate = "-1"
    unknown = standard_terms()
    unknown.rules[0].symbol_group = "Crypto"
    for terms in (over, negative, unknown):
        code, reason = await fails(
            ib.stub.CreatePlan(pb.CreatePlanRequest(plan_id="bad", terms=terms), metadata=admin)
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAN")
    assert await ib.scalar("SELECT count(*) FROM plans") == 0
    await ib.create_plan("std", standard_terms())
    later = datetime.now(UTC) + timedelta(days=2)
    await ib.stub.CreatePlanVersion(
        pb.CreatePlanVersionRequest(
            plan_id="std", terms=standard_terms(), effective_from=ts(later)
        ),
        metadata=admin,
    )
    code, reason = await fails(
        ib.stub.CreatePlanVersion(
            pb.CreatePlanVersionRequest(
                plan_id="std", terms=standard_terms(), effective_from=ts(later - timedelta(days=1))
            ),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PLAN_VERSION_OVERLAP")
    code, reason = await fails(
        ib.stub.CreatePlanVersion(
            pb.CreatePlanVersionRequest(
                plan_id="std",
                terms=standard_terms(),
                effective_from=ts(datetime(2020, 1, 1, tzinfo=UTC)),
            ),
            metadata=admin,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PLAN_VERSION_IN_PAST")
    assert await ib.scalar("SELECT count(*) FROM plan_versions") == 2
    got = await ib.stub.GetPlan(pb.GetPlanRequest(plan_id="std"), metadata=admin)
    assert [v.version for v in got.versions] == [1, 2]
    assert got.versions[0].terms == standard_terms()
    # Staff changes need a two-factor session.
    code, reason = await fails(
        ib.stub.CreatePartner(
            pb.CreatePartnerRequest(user_id=str(uuid.uuid4())), metadata=ib.admin(aal=1)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "AAL2_REQUIRED")
    code, _ = await fails(
        ib.stub.CreatePartner(pb.CreatePartnerRequest(user_id="nope"), metadata=admin)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert await ib.scalar("SELECT count(*) FROM partners") == 0


async def test_clicks_and_joining_by_approval(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    async with running_ib(database_url, nats_url, token_authority, ib_join_mode="approval") as ib:
        root = await ib.create_partner()
        code_ = await ib.refer(root, uuid.uuid4())
        for _ in range(3):
            await ib.stub.RecordLinkClick(pb.RecordLinkClickRequest(code=code_))
        code, reason = await fails(
            ib.stub.RecordLinkClick(pb.RecordLinkClickRequest(code="ZZZZZZZZ"))
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LINK_NOT_FOUND")
        await ib.wait_inbox("ib-identity", 1)
        stats = await ib.stub.GetLinkStats(
            pb.GetLinkStatsRequest(), metadata=ib.as_ib(root.user_id)
        )
        assert [(s.clicks, s.registrations) for s in stats.stats] == [(3, 1)]
        applicant = uuid.uuid4()
        joined = await ib.stub.JoinProgram(
            pb.JoinProgramRequest(invitation_code=code_),
            metadata=ib.authority.metadata(subject=str(applicant), roles=("client",)),
        )
        assert (joined.partner.status, joined.partner.parent_partner_id) == (
            pb.PARTNER_STATUS_PENDING,
            root.partner_id,
        )
        await ib.publish(identity_pb2.RoleChanged(user_id=str(applicant), role="ib", granted=True))
        await ib.wait_inbox("ib-identity", 2)
        mine = await ib.stub.GetMyPartner(pb.GetMyPartnerRequest(), metadata=ib.as_ib(applicant))
        assert mine.partner.status == pb.PARTNER_STATUS_ACTIVE
        created = await ib.outbox("IbPartnerCreated")
        assert [e.user_id for e in created][-1] == str(applicant)


async def test_revenue_share_and_reattribution(ib: Ib) -> None:
    (root, child), client = await referred_client(ib)
    other = await ib.create_partner(plan_id="std")
    start = datetime.now(UTC) + timedelta(seconds=1)
    await trade(ib, client, 1, start, timedelta(minutes=1), commission="-10")
    closing = deal_event(
        client, 99, 1, 1, start + timedelta(minutes=2), profit="-990", commission="0"
    )
    await ib.publish(closing)
    await ib.wait_inbox("ib-mtbridge", 3)
    admin = ib.admin()
    end = start + timedelta(minutes=5)
    ib.deps.clock = lambda: end + timedelta(minutes=1)
    settled = await ib.stub.SettleRevenueShare(
        pb.SettleRevenueShareRequest(
            period_start=ts(start - timedelta(hours=1)), period_end=ts(end)
        ),
        metadata=admin,
    )
    # Net loss 1010 (a loss of 990 and two commissions of 10): 25% = 252.50 shared 40% / 20%.
    assert settled.entries == 2
    rows = await ib.sql(
        "SELECT partner_id, amount FROM ledger WHERE rule_kind = 'revenue_share' ORDER BY level"
    )
    assert [(str(r["partner_id"]), r["amount"]) for r in rows] == [
        (child.partner_id, Decimal("101.00")),
        (root.partner_id, Decimal("50.50")),
    ]
    code, reason = await fails(
        ib.stub.SettleRevenueShare(
            pb.SettleRevenueShareRequest(period_start=ts(start), period_end=ts(end)), metadata=admin
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PERIOD_SETTLED")

    moved = await ib.stub.ReattributeClient(
        pb.ReattributeClientRequest(
            client_user_id=str(client), partner_id=other.partner_id, reason="ticket 42"
        ),
        metadata=admin,
    )
    assert moved.previous_partner_id == child.partner_id
    later = end + timedelta(minutes=10)
    await trade(ib, client, 7, later, timedelta(minutes=2), commission="0")
    await ib.wait_inbox("ib-mtbridge", 5)
    earners = {
        str(r["partner_id"]) for r in await ib.sql("SELECT partner_id FROM ledger WHERE deal = 71")
    }
    assert earners == {other.partner_id}
    (attributed,) = [e for e in await ib.outbox("IbClientAttributed") if e.manual]
    assert (attributed.previous_partner_id, attributed.partner_id) == (
        child.partner_id,
        other.partner_id,
    )
    (entry,) = await ib.sql("SELECT details FROM audit_log WHERE action = 'ib.client.reattributed'")
    assert json.loads(entry["details"])["reason"] == "ticket 42"
