"""The staff API: rule admin and back-tests, precise statuses for bad input, the case
workflow and its export, restrictions and their expiry, the audit chain."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from pipworks.antifraud.v1 import antifraud_service_pb2 as pb
from pipworks_antifraud.handlers.stream import RestrictionExpiry
from pipworks_platform.audit import check_chain
from pipworks_platform.grpc_errors import error_details
from tests.antifraud.support import (
    T0,
    Antifraud,
    deposit,
    officer,
    running_antifraud,
    structuring,
)
from tests.helpers import eventually
from tests.tokens import TokenAuthority


def rule(**changes: object) -> pb.Rule:
    base = {
        "rule_id": "big-deposit-eu",
        "name": "Big EUR deposit",
        "event_kinds": ["DEPOSIT"],
        "condition": 'event.currency == "EUR" and sum(deposit, 24h) >= 5000',
        "score": "15",
        "severity": pb.SEVERITY_MEDIUM,
        "actions": [pb.RULE_ACTION_ALERT],
        "mode": pb.RULE_MODE_LIVE,
        "reason": "BIG_EUR",
    }
    base.update(changes)
    return pb.Rule(**base)  # type: ignore[arg-type]


async def rejected(call: object) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    details = error_details(caught.value)
    return caught.value.code(), details.reason, list(details.field_violations)


async def test_rules_are_created_versioned_and_listed(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    staff = officer(token_authority)
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        created = await af.stub.CreateRule(pb.CreateRuleRequest(rule=rule()), metadata=staff)
        assert created.rule.version == 1
        assert created.rule.created_by
        updated = await af.stub.UpdateRule(
            pb.UpdateRuleRequest(rule=rule(score="30"), expected_version=1), metadata=staff
        )
        assert (updated.rule.version, updated.rule.score) == (2, "30.00")
        code, reason, _ = await rejected(
            af.stub.UpdateRule(
                pb.UpdateRuleRequest(rule=rule(score="40"), expected_version=1), metadata=staff
            )
        )
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "RULE_VERSION_MISMATCH")
        shadowed = await af.stub.SetRuleMode(
            pb.SetRuleModeRequest(rule_id="big-deposit-eu", mode=pb.RULE_MODE_SHADOW),
            metadata=staff,
        )
        kept = await af.stub.UpdateRule(
            pb.UpdateRuleRequest(rule=rule(score="35", mode=pb.RULE_MODE_UNSPECIFIED)),
            metadata=staff,
        )
        assert (shadowed.rule.version, kept.rule.version) == (3, 4)
        assert kept.rule.mode == pb.RULE_MODE_SHADOW
        old = await af.stub.GetRule(
            pb.GetRuleRequest(rule_id="big-deposit-eu", version=1), metadata=staff
        )
        assert old.rule.score == "15.00"
        code, _, _ = await rejected(
            af.stub.CreateRule(pb.CreateRuleRequest(rule=rule()), metadata=staff)
        )
        assert code == grpc.StatusCode.ALREADY_EXISTS
        ids, token = [], ""
        while True:
            page = await af.stub.ListRules(
                pb.ListRulesRequest(page_size=5, page_token=token),
                metadata=officer(token_authority, role="support"),
            )
            ids += [r.rule_id for r in page.rules]
            token = page.next_page_token
            if not token:
                break
        assert "big-deposit-eu" in ids
        assert "structuring" in ids
        assert len(ids) == len(set(ids)) == 15
        code, reason, _ = await rejected(
            af.stub.ListRules(pb.ListRulesRequest(page_token="not-a-token"), metadata=staff)
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
        audit = await af.sql("SELECT action, subject FROM audit_log ORDER BY sequence")
        assert [(r["action"], r["subject"]) for r in audit] == [
            ("rule.created", "rule:big-deposit-eu"),
            ("rule.updated", "rule:big-deposit-eu"),
            ("rule.mode_changed", "rule:big-deposit-eu"),
            ("rule.updated", "rule:big-deposit-eu"),
        ]
        report = await check_chain(af.deps.staff.uow)
        assert report.intact
        assert report.entries_checked == 4


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"condition": "event.amount >"}, "rule.condition", "unexpected the end"),
        ({"condition": "event.colour == 'red'"}, "rule.condition", "unknown field 'event.colour'"),
        ({"condition": "count(deposit, 0m) > 2"}, "rule.condition", "greater than zero"),
        ({"event_kinds": ["DEPOSITS"]}, "rule.event_kinds", "unknown event kind"),
        ({"score": "lots"}, "rule.score", "decimal"),
        ({"rule_id": "X"}, "rule.rule_id", "lower-case"),
        ({"reason": "big"}, "rule.reason", "UPPER_SNAKE"),
    ],
)
async def test_bad_rules_are_refused_naming_the_field_and_nothing_changes(
    database_url: str,
    nats_url: str,
    token_authority: TokenAuthority,
    changes: dict[str, object],
    field: str,
    says: str,
) -> None:
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        code, reason, violations = await rejected(
            af.stub.CreateRule(
                pb.CreateRuleRequest(rule=rule(**changes)), metadata=officer(token_authority)
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert reason == "INVALID_RULE"
        assert [f for f, _ in violations] == [field]
        assert says in violations[0][1]
        assert await af.scalar("SELECT count(*) FROM rules WHERE rule_id = 'big-deposit-eu'") == 0
        assert await af.scalar("SELECT count(*) FROM audit_log") == 0


async def test_permissions_come_before_existence(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        for metadata in (
            officer(token_authority, role="support"),
            officer(token_authority, role="client"),
            officer(token_authority, aal=1),
        ):
            code, _, _ = await rejected(
                af.stub.LiftRestriction(
                    pb.LiftRestrictionRequest(restriction_id=str(uuid.uuid4()), reason="x"),
                    metadata=metadata,
                )
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED
        code, reason, _ = await rejected(
            af.stub.LiftRestriction(
                pb.LiftRestrictionRequest(restriction_id=str(uuid.uuid4()), reason="x"),
                metadata=officer(token_authority),
            )
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "RESTRICTION_NOT_FOUND")


async def structured_case(af: Antifraud, user: uuid.UUID) -> str:
    for event in structuring(user):
        await af.publish(event)
    rows = await eventually(lambda: af.sql("SELECT case_id FROM cases WHERE user_id = $1", user))
    return str(rows[0]["case_id"])


async def test_case_workflow_export_and_closed_case_refusals(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    staff = officer(token_authority)
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        case_id = await structured_case(af, user)
        assigned = await af.stub.AssignCase(
            pb.AssignCaseRequest(case_id=case_id, assignee="officer-7"), metadata=staff
        )
        assert assigned.case.assignee == "officer-7"
        assert assigned.case.alert_count == 1
        code, reason, _ = await rejected(
            af.stub.SetCaseStatus(
                pb.SetCaseStatusRequest(case_id=case_id, status=pb.CASE_STATUS_CLOSED_CONFIRMED),
                metadata=staff,
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        await af.stub.SetCaseStatus(
            pb.SetCaseStatusRequest(case_id=case_id, status=pb.CASE_STATUS_ESCALATED),
            metadata=staff,
        )
        await af.stub.AddCaseComment(
            pb.AddCaseCommentRequest(case_id=case_id, body="Three deposits from one card."),
            metadata=staff,
        )
        await af.stub.ResolveCase(
            pb.ResolveCaseRequest(
                case_id=case_id,
                resolution=pb.CASE_RESOLUTION_FALSE_POSITIVE,
                note="Salary split by the bank.",
            ),
            metadata=staff,
        )
        before = await af.scalar("SELECT count(*) FROM audit_log")
        for call in (
            af.stub.AddCaseComment(
                pb.AddCaseCommentRequest(case_id=case_id, body="late"), metadata=staff
            ),
            af.stub.AssignCase(pb.AssignCaseRequest(case_id=case_id, assignee="x"), metadata=staff),
            af.stub.ResolveCase(
                pb.ResolveCaseRequest(
                    case_id=case_id, resolution=pb.CASE_RESOLUTION_CONFIRMED, note="again"
                ),
                metadata=staff,
            ),
        ):
            code, reason, _ = await rejected(call)
            assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLOSED")
        assert await af.scalar("SELECT count(*) FROM audit_log") == before
        assert await af.scalar("SELECT count(*) FROM restrictions") == 0
        exported = await af.stub.ExportCase(pb.ExportCaseRequest(case_id=case_id), metadata=staff)
        by_type = {d.media_type: d for d in exported.documents}
        report = json.loads(by_type["application/json"].content)
        assert report["case"]["subject_user_id"] == str(user)
        assert report["case"]["status"] == "CLOSED_FALSE_POSITIVE"
        assert [a["rule_id"] for a in report["alerts"]] == ["structuring"]
        assert report["narrative"][0]["text"] == "Three deposits from one card."
        rows = list(csv.reader(io.StringIO(by_type["text/csv"].content.decode())))
        assert rows[0][0] == "record"
        assert [r[0] for r in rows[1:]] == ["alert", "event"]
        assert rows[2][7] == "9100"
        got = await af.stub.GetCase(pb.GetCaseRequest(case_id=case_id), metadata=staff)
        assert got.case.resolution_note == "Salary split by the bank."
        assert [c.body for c in got.comments] == ["Three deposits from one card."]


async def test_backtest_reports_what_a_rule_would_have_flagged(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    users = [uuid.uuid4() for _ in range(3)]
    async with running_antifraud(database_url, nats_url, token_authority) as af:
        for n, user in enumerate(users):
            for i in range(n + 1):
                await af.publish(deposit(user, "700", T0 + timedelta(minutes=i)))
        await eventually(af.evaluated, until=lambda n: n == 6)
        candidate = rule(
            rule_id="many-small", condition="count(deposit, 1h) >= 2", mode=pb.RULE_MODE_SHADOW
        )
        result = await af.stub.TestRule(
            pb.TestRuleRequest(rule=candidate, days=7), metadata=officer(token_authority)
        )
        assert result.events_evaluated == 6
        assert (result.hit_count, result.clients_flagged) == (3, 2)
        assert {h.user_id for h in result.hits} == {str(users[1]), str(users[2])}
        assert result.hits[0].values["count(deposit, 1h)"] == "2"
        assert await af.scalar("SELECT count(*) FROM rules WHERE rule_id = 'many-small'") == 0
        code, _, violations = await rejected(
            af.stub.TestRule(
                pb.TestRuleRequest(rule=candidate, days=0), metadata=officer(token_authority)
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert violations[0][0] == "days"


async def test_restrictions_by_hand_lift_with_a_reason_and_expire(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    staff = officer(token_authority)
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        request = pb.CreateRestrictionRequest(
            user_id=str(user),
            login=True,
            reason="CHARGEBACK",
            duration_hours=2,
            idempotency_key="k-1",
        )
        first = await af.stub.CreateRestriction(request, metadata=staff)
        again = await af.stub.CreateRestriction(request, metadata=staff)
        assert first.restriction.restriction_id == again.restriction.restriction_id
        assert len(await af.outbox("AntifraudClientRestricted")) == 1
        code, _, violations = await rejected(
            af.stub.LiftRestriction(
                pb.LiftRestrictionRequest(
                    restriction_id=first.restriction.restriction_id, reason=" "
                ),
                metadata=staff,
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert violations[0][0] == "reason"
        assert await af.outbox("AntifraudClientUnrestricted") == []
        code, _, violations = await rejected(
            af.stub.CreateRestriction(
                pb.CreateRestrictionRequest(user_id=str(user), reason="CHARGEBACK"), metadata=staff
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        manual = await af.stub.CreateRestriction(
            pb.CreateRestrictionRequest(user_id=str(user), trading=True, reason="REVIEW"),
            metadata=staff,
        )
        lifted = await af.stub.LiftRestriction(
            pb.LiftRestrictionRequest(
                restriction_id=manual.restriction.restriction_id, reason="Documents received."
            ),
            metadata=staff,
        )
        assert not lifted.restriction.active
        assert lifted.restriction.lift_reason
        expiry = RestrictionExpiry(
            af.deps.staff.uow, 60, clock=lambda: datetime.now(UTC) + timedelta(hours=3)
        )
        assert await expiry.run_once() == 1
        unrestricted = await af.outbox("AntifraudClientUnrestricted")
        assert [(u.reason, u.login) for u in unrestricted] == [
            ("Documents received.", False),
            ("EXPIRED", True),
        ]
        active = await af.stub.ListRestrictions(
            pb.ListRestrictionsRequest(user_id=str(user), active_only=True), metadata=staff
        )
        assert list(active.restrictions) == []


async def test_lifting_one_of_two_restrictions_allows_only_what_the_other_does_not_block(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    staff = officer(token_authority)

    async def restrict(**flags: bool) -> str:
        made = await af.stub.CreateRestriction(
            pb.CreateRestrictionRequest(user_id=str(user), reason="REVIEW", **flags),
            metadata=staff,
        )
        return made.restriction.restriction_id

    async def lift(restriction_id: str) -> None:
        await af.stub.LiftRestriction(
            pb.LiftRestrictionRequest(restriction_id=restriction_id, reason="Reviewed."),
            metadata=staff,
        )

    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        both = await restrict(trading=True, withdrawals=True)
        trading_only = await restrict(trading=True)
        await lift(both)
        await lift(trading_only)
        unrestricted = await af.outbox("AntifraudClientUnrestricted")
        # Trading stays blocked until the second restriction goes; withdrawals free at once.
        assert [(u.restriction_id, u.trading, u.withdrawals) for u in unrestricted] == [
            (both, False, True),
            (trading_only, True, False),
        ]
