"""The engine behind the consumer: events on NATS → alerts, cases and restrictions in
PostgreSQL; idempotent replays, restarts that keep windows, shadow mode, poison events."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import nats
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from pipworks.antifraud.v1 import antifraud_service_pb2 as pb
from pipworks.events.v1 import antifraud_pb2, mtbridge_pb2
from pipworks_platform.streams import deadletter_subject
from tests.antifraud.support import (
    T0,
    Antifraud,
    deposit,
    kyc_approved,
    login,
    officer,
    running_antifraud,
    structuring,
    ts,
    withdrawal,
)
from tests.helpers import eventually
from tests.tokens import TokenAuthority


async def wait_evaluated(af: Antifraud, count: int) -> None:
    await eventually(af.evaluated, until=lambda n: n >= count)


async def alerts_of(af: Antifraud, user: uuid.UUID) -> list[tuple[str, str]]:
    rows = await af.sql(
        "SELECT rule_id, source_event_id::text AS e FROM alerts WHERE user_id = $1 ORDER BY seq",
        user,
    )
    return [(r["rule_id"], r["e"]) for r in rows]


async def test_structuring_raises_an_alert_and_opens_a_case_once_even_on_replay(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    raised = {"severity": "high", "rule": "structuring"}
    before = REGISTRY.get_sample_value("pipworks_antifraud_alerts_raised_total", raised) or 0
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        ids = [await af.publish(event) for event in structuring(user)]
        await wait_evaluated(af, 3)
        assert [rule for rule, _ in await alerts_of(af, user)] == ["structuring"]
        # the same events again (a producer replay): same ids, nothing new
        for event, event_id in zip(structuring(user), ids, strict=True):
            await af.publish(event, event_id=f"{event_id}")
        await af.publish(deposit(user, "10", T0 + timedelta(hours=5)))
        await wait_evaluated(af, 4)
        assert [rule for rule, _ in await alerts_of(af, user)] == ["structuring"]
        assert len(await af.outbox("AntifraudAlertRaised")) == 1
        after = REGISTRY.get_sample_value("pipworks_antifraud_alerts_raised_total", raised)
        assert after == before + 1
        opened = await af.outbox("AntifraudCaseOpened")
        assert [o.user_id for o in opened] == [str(user)]
        reply = await af.stub.ListAlerts(
            pb.ListAlertsRequest(user_id=str(user)), metadata=officer(token_authority)
        )
        (alert,) = reply.alerts
        assert alert.case_id == opened[0].case_id
        assert alert.values["event.amount"] == "9100"
        assert any(k.startswith("count(deposit") and v == "3" for k, v in alert.values.items())


async def test_a_restart_mid_stream_keeps_the_windows(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    first, second, third = structuring(user)
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        await af.publish(first)
        await af.publish(second)
        await wait_evaluated(af, 2)
        assert await alerts_of(af, user) == []
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        assert len(af.deps.detector.cache) == 0  # nothing carried over in memory
        await af.publish(third)
        await wait_evaluated(af, 3)
        assert [rule for rule, _ in await alerts_of(af, user)] == ["structuring"]


async def test_shadow_mode_records_the_score_and_takes_no_action(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    staff = officer(token_authority)
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        reply = await af.stub.SetRuleMode(
            pb.SetRuleModeRequest(rule_id="rapid-in-out", mode=pb.RULE_MODE_SHADOW),
            metadata=staff,
        )
        assert reply.rule.version == 2
        assert reply.rule.mode == pb.RULE_MODE_SHADOW
        await af.publish(deposit(user, "5000", T0))
        await af.publish(withdrawal(user, "4900", T0 + timedelta(hours=2)))
        await wait_evaluated(af, 2)
        assert await alerts_of(af, user) == []
        assert await af.scalar("SELECT count(*) FROM restrictions") == 0
        assert await af.scalar("SELECT count(*) FROM cases") == 0
        risk = await af.stub.GetClientRisk(
            pb.GetClientRiskRequest(user_id=str(user)), metadata=staff
        )
        (point,) = risk.history
        assert point.shadow_score == "60.00"
        assert point.score == "0.00"
        assert point.rules == ["rapid-in-out@2"]
        assert risk.aggregates["sum(deposit, 7d)"] == "5000"


async def test_a_live_rule_restricts_and_a_confirmed_case_reaches_nats(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    staff = officer(token_authority)
    listener = await nats.connect(nats_url)
    try:
        seen = []

        async def on_message(msg) -> None:  # type: ignore[no-untyped-def]
            seen.append(antifraud_pb2.AntifraudClientRestricted.FromString(msg.data))

        await listener.subscribe("pipworks.antifraud.v1.client.restricted", cb=on_message)
        async with running_antifraud(database_url, nats_url, token_authority, relay=True) as af:
            await af.publish(deposit(user, "5000", T0))
            await af.publish(withdrawal(user, "4900", T0 + timedelta(hours=2)))
            await wait_evaluated(af, 2)
            await eventually(lambda: _value(len(seen)), until=lambda n: n == 1)
            assert seen[0].withdrawals
            assert not seen[0].trading
            assert seen[0].reason == "RAPID_IN_OUT"
            assert seen[0].HasField("expires_at")
            cases = await af.stub.ListCases(pb.ListCasesRequest(user_id=str(user)), metadata=staff)
            (case,) = cases.cases
            await af.stub.SetCaseStatus(
                pb.SetCaseStatusRequest(case_id=case.case_id, status=pb.CASE_STATUS_INVESTIGATING),
                metadata=staff,
            )
            await af.stub.AddCaseComment(
                pb.AddCaseCommentRequest(case_id=case.case_id, body="Card holder unreachable."),
                metadata=staff,
            )
            resolved = await af.stub.ResolveCase(
                pb.ResolveCaseRequest(
                    case_id=case.case_id,
                    resolution=pb.CASE_RESOLUTION_CONFIRMED,
                    note="Money mule.",
                ),
                metadata=staff,
            )
            assert resolved.case.status == pb.CASE_STATUS_CLOSED_CONFIRMED
            assert resolved.restriction.trading
            assert resolved.restriction.withdrawals
            await eventually(lambda: _value(len(seen)), until=lambda n: n == 2)
            assert seen[1].reason == "CASE_CONFIRMED"
            assert seen[1].case_id == case.case_id
            assert not seen[1].HasField("expires_at")
            resolved_events = await af.outbox("AntifraudCaseResolved")
            assert [e.resolution for e in resolved_events] == [
                antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_CONFIRMED
            ]
            actions = [
                r["action"] for r in await af.sql("SELECT action FROM audit_log ORDER BY sequence")
            ]
            assert actions == ["case.status_changed", "case.commented", "case.resolved"]
    finally:
        await listener.close()


async def _value(value: int) -> int:
    return value


async def test_login_geography_and_the_kyc_country(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        await af.publish(kyc_approved(user, "GB", T0))
        await wait_evaluated(af, 1)  # kyc and mtbridge are separate streams: no order across
        await af.publish(login(user, "192.0.2.10", T0 + timedelta(hours=1)))  # London
        await af.publish(login(user, "198.51.100.7", T0 + timedelta(hours=3)))  # Sydney
        await af.publish(deposit(user, "100", T0 + timedelta(hours=4), country="NG"))
        await wait_evaluated(af, 4)
        rules = {rule for rule, _ in await alerts_of(af, user)}
        assert rules == {"new-country-login", "impossible-travel", "deposit-country-mismatch"}


async def test_unexpected_content_is_dead_lettered_and_the_stream_goes_on(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    parked: list[tuple[str, str]] = []
    listener: NATS = await nats.connect(nats_url)
    try:

        async def on_message(msg) -> None:  # type: ignore[no-untyped-def]
            parked.append((msg.subject, msg.headers.get("Pipworks-Dead-Letter-Reason", "")))

        await listener.subscribe(
            deadletter_subject("antifraud", "antifraud-mtbridge"), cb=on_message
        )
        async with running_antifraud(database_url, nats_url, token_authority) as af:
            bad = deposit(user, "lots", T0)
            await af.publish(bad)
            await af.publish(
                mtbridge_pb2.MtDealExecuted(
                    user_id="not-a-uuid", volume_lots="1", executed_at=ts(T0)
                )
            )
            await af.publish(deposit(user, "20000", T0))
            await wait_evaluated(af, 1)
            await eventually(lambda: _value(len(parked)), until=lambda n: n == 2)
            reasons = sorted(reason for _, reason in parked)
            assert "amount 'lots' is not a decimal" in reasons[0]
            assert "not a UUID" in reasons[1]
            assert [rule for rule, _ in await alerts_of(af, user)] == ["large-transaction"]
    finally:
        await listener.close()


async def test_a_backlog_is_applied_in_batches_each_in_one_transaction(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    users = [uuid.uuid4() for _ in range(10)]
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        for n in range(60):  # a backlog before the consumers start
            user = users[n % 10]
            await af.publish(deposit(user, "9500", T0 + timedelta(minutes=n), instrument="c-1"))
    before = {outcome: _batches(outcome) for outcome in ("applied", "failed")}
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        await wait_evaluated(af, 60)
        assert _batches("failed") == before["failed"]
        assert 1 <= _batches("applied") - before["applied"] < 60
        per_rule = await af.sql("SELECT rule_id, count(*) AS n FROM alerts GROUP BY rule_id")
        counts = {r["rule_id"]: r["n"] for r in per_rule}
        # each client once (cooldowns): structuring on its third deposit, and the shared
        # card from the third client on (the first two on their next deposit)
        assert counts == {"structuring": 10, "shared-instrument": 10}
        states = await af.sql("SELECT state::text AS s FROM client_state")
        deposited = [sum(Decimal(day[2]) for day in json.loads(r["s"])["days"]) for r in states]
        assert deposited == [Decimal(6 * 9500)] * 10  # each deposit folded in exactly once


def _batches(outcome: str) -> float:
    """Batches the bridge consumer applied whole (or gave back), from its metric."""
    labels = {"service": "antifraud", "consumer": "antifraud-mtbridge", "outcome": outcome}
    return REGISTRY.get_sample_value("pipworks_consumer_batches_total", labels) or 0.0
