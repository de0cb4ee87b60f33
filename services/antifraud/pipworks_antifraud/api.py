"""gRPC surface of the antifraud service: proto in, use case, proto out.

Who may call what is decided before any of this runs, by the platform's AuthInterceptor
from each method's ``(pipworks.common.v1.policy)`` (staff roles, aal2).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import grpc

from pipworks.antifraud.v1 import antifraud_service_pb2 as pb
from pipworks.antifraud.v1 import antifraud_service_pb2_grpc as pb_grpc
from pipworks.common.v1 import service_info_pb2
from pipworks_antifraud import validation as v
from pipworks_antifraud.handlers.staff import Staff
from pipworks_antifraud.handlers.stream import stamp
from pipworks_platform.auth import require_principal
from pipworks_platform.errors import InvalidArgument

Context = grpc.aio.ServicerContext
MAX_BACKTEST_DAYS = 90


def _actor() -> str:
    return require_principal().subject


def _severity(value: int) -> int:
    if value not in (0, *v.SEVERITY_NAMES):
        raise InvalidArgument.for_field("min_severity", "is not a known severity")
    return int(value)


def _score(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def rule_message(row: Any) -> pb.Rule:
    return pb.Rule(
        rule_id=row.rule_id,
        version=row.version,
        name=row.name,
        description=row.description,
        event_kinds=list(row.event_kinds),
        condition=row.condition,
        score=_score(row.score),
        severity=v.SEVERITY_VALUES[row.severity],
        actions=[v.ACTION_VALUES[a] for a in row.actions],
        mode=v.MODE_VALUES[row.mode],
        reason=row.reason,
        restriction_hours=row.restriction_hours,
        cooldown_seconds=row.cooldown_seconds,
        created_at=stamp(row.created_at),
        created_by=row.created_by,
    )


def alert_message(row: Any) -> pb.Alert:
    return pb.Alert(
        alert_id=str(row.alert_id),
        user_id=str(row.user_id),
        rule_id=row.rule_id,
        rule_version=row.rule_version,
        severity=v.SEVERITY_VALUES[row.severity],
        score=_score(row.score),
        source_event_id=str(row.source_event_id),
        source_subject=row.source_subject,
        case_id=str(row.case_id) if row.case_id else "",
        values=dict(row.values),
        raised_at=stamp(row.raised_at),
        reason=row.reason,
    )


def case_message(row: Any, totals: dict[Any, tuple[int, Decimal]]) -> pb.Case:
    count, total = totals.get(row.case_id, (0, Decimal(0)))
    message = pb.Case(
        case_id=str(row.case_id),
        user_id=str(row.user_id),
        status=v.STATUS_VALUES[row.status],
        assignee=row.assignee,
        opened_at=stamp(row.opened_at),
        updated_at=stamp(row.updated_at),
        resolution_note=row.resolution_note,
        alert_count=count,
        total_score=_score(total),
    )
    if row.resolved_at is not None:
        message.resolved_at.CopyFrom(stamp(row.resolved_at))
    return message


def restriction_message(row: Any) -> pb.Restriction:
    message = pb.Restriction(
        restriction_id=str(row.restriction_id),
        user_id=str(row.user_id),
        trading=row.trading,
        withdrawals=row.withdrawals,
        login=row.login,
        reason=row.reason,
        note=row.note,
        case_id=str(row.case_id) if row.case_id else "",
        rule_id=row.rule_id,
        created_by=row.created_by,
        created_at=stamp(row.created_at),
        lift_reason=row.lift_reason,
        active=row.lifted_at is None,
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(stamp(row.expires_at))
    if row.lifted_at is not None:
        message.lifted_at.CopyFrom(stamp(row.lifted_at))
    return message


def comment_message(row: Any) -> pb.CaseComment:
    return pb.CaseComment(author=row.author, body=row.body, created_at=stamp(row.created_at))


class AntifraudApi(pb_grpc.AntifraudServiceServicer):
    def __init__(self, staff: Staff, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._staff = staff
        self._describe = describe

    async def GetServiceInfo(
        self, request: pb.GetServiceInfoRequest, context: Context
    ) -> pb.GetServiceInfoResponse:
        return pb.GetServiceInfoResponse(info=self._describe())

    # -- rules --------------------------------------------------------------------------

    async def CreateRule(
        self, request: pb.CreateRuleRequest, context: Context
    ) -> pb.CreateRuleResponse:
        actor = _actor()
        row = await self._staff.create_rule(actor, v.rule_spec(request.rule))
        return pb.CreateRuleResponse(rule=rule_message(row))

    async def UpdateRule(
        self, request: pb.UpdateRuleRequest, context: Context
    ) -> pb.UpdateRuleResponse:
        actor = _actor()
        if request.expected_version < 0:
            raise InvalidArgument.for_field("expected_version", "must not be negative")
        row = await self._staff.update_rule(
            actor, v.rule_spec(request.rule), request.expected_version
        )
        return pb.UpdateRuleResponse(rule=rule_message(row))

    async def SetRuleMode(
        self, request: pb.SetRuleModeRequest, context: Context
    ) -> pb.SetRuleModeResponse:
        actor = _actor()
        mode = v.MODE_NAMES.get(request.mode)
        if mode is None:
            raise InvalidArgument.for_field("mode", "must be LIVE, SHADOW or DISABLED")
        rule_id = v.text(request.rule_id, "rule_id", maximum=63)
        return pb.SetRuleModeResponse(
            rule=rule_message(await self._staff.set_rule_mode(actor, rule_id, mode))
        )

    async def GetRule(self, request: pb.GetRuleRequest, context: Context) -> pb.GetRuleResponse:
        rule_id = v.text(request.rule_id, "rule_id", maximum=63)
        if request.version < 0:
            raise InvalidArgument.for_field("version", "must not be negative")
        return pb.GetRuleResponse(
            rule=rule_message(await self._staff.get_rule(rule_id, request.version))
        )

    async def ListRules(
        self, request: pb.ListRulesRequest, context: Context
    ) -> pb.ListRulesResponse:
        page = await self._staff.list_rules(v.page_size(request.page_size), request.page_token)
        return pb.ListRulesResponse(
            rules=[rule_message(r) for r in page.rows], next_page_token=page.next_token
        )

    async def TestRule(self, request: pb.TestRuleRequest, context: Context) -> pb.TestRuleResponse:
        spec = v.rule_spec(request.rule)
        if not 1 <= request.days <= MAX_BACKTEST_DAYS:
            raise InvalidArgument.for_field("days", f"must be between 1 and {MAX_BACKTEST_DAYS}")
        max_hits = v.page_size(request.max_hits, "max_hits", default=100, maximum=1000)
        result = await self._staff.test_rule(spec, request.days, max_hits)
        return pb.TestRuleResponse(
            events_evaluated=result["evaluated"],
            hit_count=result["hit_count"],
            clients_flagged=result["clients"],
            hits=[
                pb.TestHit(
                    user_id=h["user_id"],
                    event_id=h["event_id"],
                    event_kind=h["kind"],
                    occurred_at=stamp(h["occurred_at"]),
                    values=h["values"],
                )
                for h in result["hits"]
            ],
        )

    # -- alerts and cases -------------------------------------------------------------------

    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: Context
    ) -> pb.ListAlertsResponse:
        page = await self._staff.list_alerts(
            user_id=v.uuid_field(request.user_id, "user_id", required=False),
            rule_id=v.text(request.rule_id, "rule_id", required=False, maximum=63),
            min_severity=_severity(request.min_severity),
            case_id=v.uuid_field(request.case_id, "case_id", required=False),
            page_size=v.page_size(request.page_size),
            token=request.page_token,
        )
        return pb.ListAlertsResponse(
            alerts=[alert_message(r) for r in page.rows], next_page_token=page.next_token
        )

    async def ListCases(
        self, request: pb.ListCasesRequest, context: Context
    ) -> pb.ListCasesResponse:
        status = v.STATUS_NAMES.get(request.status, "") if request.status else ""
        if request.status and not status:
            raise InvalidArgument.for_field("status", "is not a known status")
        page, totals = await self._staff.list_cases(
            user_id=v.uuid_field(request.user_id, "user_id", required=False),
            status=status,
            assignee=v.text(request.assignee, "assignee", required=False, maximum=200),
            page_size=v.page_size(request.page_size),
            token=request.page_token,
        )
        return pb.ListCasesResponse(
            cases=[case_message(r, totals) for r in page.rows], next_page_token=page.next_token
        )

    async def GetCase(self, request: pb.GetCaseRequest, context: Context) -> pb.GetCaseResponse:
        found = await self._staff.get_case(v.required_uuid(request.case_id, "case_id"))
        return pb.GetCaseResponse(
            case=case_message(found["case"], found["totals"]),
            alerts=[alert_message(a) for a in found["alerts"]],
            comments=[comment_message(c) for c in found["comments"]],
        )

    async def AssignCase(
        self, request: pb.AssignCaseRequest, context: Context
    ) -> pb.AssignCaseResponse:
        actor = _actor()
        case_id = v.required_uuid(request.case_id, "case_id")
        assignee = v.text(request.assignee, "assignee", required=False, maximum=200)
        row, totals = await self._staff.assign_case(actor, case_id, assignee)
        return pb.AssignCaseResponse(case=case_message(row, totals))

    async def AddCaseComment(
        self, request: pb.AddCaseCommentRequest, context: Context
    ) -> pb.AddCaseCommentResponse:
        actor = _actor()
        case_id = v.required_uuid(request.case_id, "case_id")
        body = v.text(request.body, "body")
        comment = await self._staff.add_comment(actor, case_id, body)
        return pb.AddCaseCommentResponse(comment=comment_message(comment))

    async def SetCaseStatus(
        self, request: pb.SetCaseStatusRequest, context: Context
    ) -> pb.SetCaseStatusResponse:
        actor = _actor()
        case_id = v.required_uuid(request.case_id, "case_id")
        status = v.STATUS_NAMES.get(request.status)
        if status not in ("OPEN", "INVESTIGATING", "ESCALATED"):
            raise InvalidArgument.for_field(
                "status", "must be OPEN, INVESTIGATING or ESCALATED; close with ResolveCase"
            )
        row, totals = await self._staff.set_case_status(actor, case_id, status)
        return pb.SetCaseStatusResponse(case=case_message(row, totals))

    async def ResolveCase(
        self, request: pb.ResolveCaseRequest, context: Context
    ) -> pb.ResolveCaseResponse:
        actor = _actor()
        case_id = v.required_uuid(request.case_id, "case_id")
        resolution = {
            pb.CASE_RESOLUTION_CONFIRMED: "CONFIRMED",
            pb.CASE_RESOLUTION_FALSE_POSITIVE: "FALSE_POSITIVE",
        }.get(request.resolution)
        if resolution is None:
            raise InvalidArgument.for_field("resolution", "must be FALSE_POSITIVE or CONFIRMED")
        note = v.text(request.note, "note")
        row, totals, restriction = await self._staff.resolve_case(actor, case_id, resolution, note)
        response = pb.ResolveCaseResponse(case=case_message(row, totals))
        if restriction is not None:
            response.restriction.CopyFrom(restriction_message(restriction))
        return response

    async def ExportCase(
        self, request: pb.ExportCaseRequest, context: Context
    ) -> pb.ExportCaseResponse:
        actor = _actor()
        documents = await self._staff.export_case(
            actor, v.required_uuid(request.case_id, "case_id")
        )
        return pb.ExportCaseResponse(
            documents=[
                pb.ExportDocument(file_name=name, media_type=media, content=content)
                for name, media, content in documents
            ]
        )

    # -- restrictions and risk -----------------------------------------------------------

    async def CreateRestriction(
        self, request: pb.CreateRestrictionRequest, context: Context
    ) -> pb.CreateRestrictionResponse:
        actor = _actor()
        user_id = v.required_uuid(request.user_id, "user_id")
        if not (request.trading or request.withdrawals or request.login):
            raise InvalidArgument.for_field(
                "trading", "at least one of trading, withdrawals or login must be blocked"
            )
        row = await self._staff.create_restriction(
            actor,
            user_id=user_id,
            trading=request.trading,
            withdrawals=request.withdrawals,
            login=request.login,
            reason=v.restriction_reason(request.reason),
            note=v.text(request.note, "note", required=False),
            duration_hours=v.duration_hours(request.duration_hours),
            idempotency_key=v.text(
                request.idempotency_key, "idempotency_key", required=False, maximum=200
            ),
        )
        return pb.CreateRestrictionResponse(restriction=restriction_message(row))

    async def LiftRestriction(
        self, request: pb.LiftRestrictionRequest, context: Context
    ) -> pb.LiftRestrictionResponse:
        actor = _actor()
        restriction_id = v.required_uuid(request.restriction_id, "restriction_id")
        reason = v.text(request.reason, "reason")
        row = await self._staff.lift_restriction(actor, restriction_id, reason)
        return pb.LiftRestrictionResponse(restriction=restriction_message(row))

    async def ListRestrictions(
        self, request: pb.ListRestrictionsRequest, context: Context
    ) -> pb.ListRestrictionsResponse:
        page = await self._staff.list_restrictions(
            user_id=v.uuid_field(request.user_id, "user_id", required=False),
            active_only=request.active_only,
            page_size=v.page_size(request.page_size),
            token=request.page_token,
        )
        return pb.ListRestrictionsResponse(
            restrictions=[restriction_message(r) for r in page.rows],
            next_page_token=page.next_token,
        )

    async def GetClientRisk(
        self, request: pb.GetClientRiskRequest, context: Context
    ) -> pb.GetClientRiskResponse:
        user_id = v.required_uuid(request.user_id, "user_id")
        size = v.page_size(request.history_size, "history_size", default=50, maximum=500)
        risk = await self._staff.client_risk(user_id, size)
        return pb.GetClientRiskResponse(
            user_id=str(user_id),
            score_30d=_score(risk["score_30d"]),
            history=[
                pb.ScorePoint(
                    event_id=str(e.event_id),
                    event_kind=e.kind,
                    occurred_at=stamp(e.occurred_at),
                    score=_score(e.score),
                    shadow_score=_score(e.shadow_score),
                    rules=[f"{h['rule']}@{h['version']}" for h in e.hits],
                )
                for e in risk["history"]
            ],
            open_alerts=[alert_message(a) for a in risk["open_alerts"]],
            restrictions=[restriction_message(r) for r in risk["restrictions"]],
            aggregates=risk["aggregates"],
        )
