"""gRPC surface of the ib service: proto in, use case, proto out."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.common.v1 import pagination_pb2, service_info_pb2
from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks.ib.v1 import ib_service_pb2_grpc
from pipworks_ib import validation as check
from pipworks_ib.domain.engine import explain
from pipworks_ib.domain.money import money_text, to_text
from pipworks_ib.handlers import partners, plans, queries, statements
from pipworks_ib.handlers.commissions import timestamp
from pipworks_ib.handlers.context import Caller, Deps
from pipworks_platform.errors import NotFound

Row = Mapping[str, Any]
Context = grpc.aio.ServicerContext
STATUSES = {"active": pb.PARTNER_STATUS_ACTIVE, "pending": pb.PARTNER_STATUS_PENDING}
STATEMENT_STATUSES = {
    "draft": pb.STATEMENT_STATUS_DRAFT,
    "approved": pb.STATEMENT_STATUS_APPROVED,
    "paid": pb.STATEMENT_STATUS_PAID,
}
HOLDS = {
    None: pb.HOLD_STATE_HELD,
    "released": pb.HOLD_STATE_RELEASED,
    "forfeited": pb.HOLD_STATE_FORFEITED,
}


def _ts(moment: datetime | None) -> Timestamp | None:
    return None if moment is None else timestamp(moment)


def partner_message(row: Row) -> pb.Partner:
    return pb.Partner(
        partner_id=str(row["id"]),
        user_id=str(row["user_id"]),
        parent_partner_id=str(row["parent_id"] or ""),
        status=STATUSES[row["status"]],
        plan_id=row["plan_id"] or "",
        depth=row["depth"] or 0,
        created_at=_ts(row["created_at"]),
    )


def link_message(row: Row) -> pb.ReferralLink:
    return pb.ReferralLink(
        code=row["code"], campaign=row["campaign"], created_at=_ts(row["created_at"])
    )


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def ledger_message(row: Row) -> pb.LedgerEntry:
    explanation = Struct()
    own, facts = _json(row["explanation"]), _json(row["facts"]) or {}
    full = explain(facts, row["rule_id"], row["level"], own)
    explanation.update(json.loads(json.dumps(full, default=str)))
    return pb.LedgerEntry(
        entry_id=str(row["id"]),
        kind=pb.ENTRY_KIND_REVERSAL if row["entry_kind"] == "reversal" else pb.ENTRY_KIND_ACCRUAL,
        partner_id=str(row["partner_id"]),
        level=row["level"],
        client_user_id=str(row["client_user_id"]),
        server=row["server"],
        deal=row["deal"],
        symbol=row["symbol"],
        rule_id=row["rule_id"],
        rule_kind=row["rule_kind"],
        plan_id=row["plan_id"],
        plan_version=row["plan_version"],
        base=to_text(row["base"].normalize()),
        rate=to_text(row["rate"].normalize()),
        amount=money_text(row["amount"], row["currency"]),
        currency=row["currency"],
        occurred_at=_ts(row["occurred_at"]),
        hold=pb.HOLD_STATE_NONE if row["hold_id"] is None else HOLDS[row["hold_resolution"]],
        explanation=explanation,
        reverses_entry_id=str(row["reverses"] or ""),
    )


def summary_line(row: Row) -> pb.SummaryLine:
    return pb.SummaryLine(
        key=str(row["key"]),
        amount=money_text(row["amount"], row["currency"]),
        entries=row["entries"],
        currency=row["currency"],
    )


def statement_message(row: Row, lines: Mapping[str, list[Row]] | None = None) -> pb.Statement:
    lines = lines or {}
    return pb.Statement(
        statement_id=str(row["id"]),
        partner_id=str(row["partner_id"]),
        period_start=_ts(row["period_start"]),
        period_end=_ts(row["period_end"]),
        currency=row["currency"],
        total=money_text(row["total"], row["currency"]),
        entries=row["entries"],
        by_client=[summary_line(r) for r in lines.get("by_client", [])],
        by_symbol=[summary_line(r) for r in lines.get("by_symbol", [])],
        by_level=[summary_line(r) for r in lines.get("by_level", [])],
        status=STATEMENT_STATUSES[row["status"]],
        payout_id=str(row["payout_id"] or ""),
        server=row["server"] or "",
        login=row["login"] or 0,
        created_at=_ts(row["created_at"]),
        approved_at=_ts(row["approved_at"]),
        paid_at=_ts(row["paid_at"]),
    )


def version_message(
    version: Mapping[str, Any] | Any, created_at: datetime | None = None
) -> pb.PlanVersion:
    if isinstance(version, Mapping):
        return pb.PlanVersion(
            plan_id=version["plan_id"],
            version=version["version"],
            effective_from=_ts(version["effective_from"]),
            terms=check.terms_message(version["terms"]),
            created_at=_ts(version["created_at"]),
        )
    return pb.PlanVersion(
        plan_id=version.plan_id,
        version=version.version,
        effective_from=_ts(version.effective_from),
        terms=check.terms_message(version.terms),
        created_at=_ts(created_at),
    )


def _page(token: str) -> pagination_pb2.PageResponse:
    return pagination_pb2.PageResponse(next_page_token=token)


class IbApi(ib_service_pb2_grpc.IbServiceServicer):
    def __init__(self, deps: Deps, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._deps = deps
        self._describe = describe

    async def GetServiceInfo(
        self, request: pb.GetServiceInfoRequest, context: Context
    ) -> pb.GetServiceInfoResponse:
        return pb.GetServiceInfoResponse(info=self._describe())

    # -- portal --------------------------------------------------------------------------

    async def JoinProgram(
        self, request: pb.JoinProgramRequest, context: Context
    ) -> pb.JoinProgramResponse:
        invitation = (
            check.code(request.invitation_code, "invitation_code")
            if request.invitation_code
            else ""
        )
        row = await partners.join_program(self._deps, Caller.current(), invitation)
        return pb.JoinProgramResponse(partner=partner_message(row))

    async def GetMyPartner(
        self, request: pb.GetMyPartnerRequest, context: Context
    ) -> pb.GetMyPartnerResponse:
        row, links = await queries.my_partner(self._deps, Caller.current())
        return pb.GetMyPartnerResponse(
            partner=partner_message(row), links=[link_message(r) for r in links]
        )

    async def CreateReferralLink(
        self, request: pb.CreateReferralLinkRequest, context: Context
    ) -> pb.CreateReferralLinkResponse:
        row = await partners.create_link(
            self._deps, Caller.current(), check.campaign(request.campaign)
        )
        return pb.CreateReferralLinkResponse(link=link_message(row))

    async def RecordLinkClick(
        self, request: pb.RecordLinkClickRequest, context: Context
    ) -> pb.RecordLinkClickResponse:
        await partners.record_click(self._deps, check.code(request.code))
        return pb.RecordLinkClickResponse()

    async def GetLinkStats(
        self, request: pb.GetLinkStatsRequest, context: Context
    ) -> pb.GetLinkStatsResponse:
        rows = await queries.link_stats(self._deps, Caller.current(), request.partner_id)
        return pb.GetLinkStatsResponse(
            stats=[
                pb.LinkStats(
                    link=link_message(r),
                    clicks=int(r["clicks"]),
                    registrations=r["registrations"],
                    funded=r["funded"],
                    active_traders=r["active_traders"],
                )
                for r in rows
            ]
        )

    async def ListMyClients(
        self, request: pb.ListMyClientsRequest, context: Context
    ) -> pb.ListMyClientsResponse:
        rows, token = await queries.my_clients(
            self._deps,
            Caller.current(),
            request.partner_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListMyClientsResponse(
            clients=[
                pb.ClientSummary(
                    client_user_id=str(r["client_user_id"]),
                    attributed_at=_ts(r["attributed_at"]),
                    referral_code=r["referral_code"] or "",
                    volume_lots=to_text(r["volume"].normalize()),
                    deals=r["deals"],
                    commission=to_text(r["commission"]),
                )
                for r in rows
            ],
            page=_page(token),
        )

    async def ListSubPartners(
        self, request: pb.ListSubPartnersRequest, context: Context
    ) -> pb.ListSubPartnersResponse:
        rows, token = await queries.sub_partners(
            self._deps,
            Caller.current(),
            request.partner_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListSubPartnersResponse(
            partners=[
                pb.SubPartner(
                    partner=partner_message(r),
                    relative_depth=r["relative_depth"],
                    clients=r["clients"],
                    commission=to_text(r["commission"]),
                    viewer_commission=to_text(r["viewer_commission"]),
                )
                for r in rows
            ],
            page=_page(token),
        )

    async def ListCommissions(
        self, request: pb.ListCommissionsRequest, context: Context
    ) -> pb.ListCommissionsResponse:
        rows, token = await queries.commissions(
            self._deps,
            Caller.current(),
            request.partner_id,
            check.time_field(request.from_time, request.HasField("from_time"), "from_time"),
            check.time_field(request.to_time, request.HasField("to_time"), "to_time"),
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListCommissionsResponse(
            entries=[ledger_message(r) for r in rows], page=_page(token)
        )

    async def SummarizeCommissions(
        self, request: pb.SummarizeCommissionsRequest, context: Context
    ) -> pb.SummarizeCommissionsResponse:
        dimension = check.dimension(request.dimension)
        rows = await queries.summarize(
            self._deps,
            Caller.current(),
            request.partner_id,
            check.time_field(request.from_time, request.HasField("from_time"), "from_time"),
            check.time_field(request.to_time, request.HasField("to_time"), "to_time"),
            dimension,
        )
        return pb.SummarizeCommissionsResponse(lines=[summary_line(r) for r in rows])

    async def ListStatements(
        self, request: pb.ListStatementsRequest, context: Context
    ) -> pb.ListStatementsResponse:
        found, token = await queries.statements(
            self._deps,
            Caller.current(),
            request.partner_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListStatementsResponse(
            statements=[statement_message(r, lines) for r, lines in found], page=_page(token)
        )

    # -- staff ---------------------------------------------------------------------------

    async def CreatePartner(
        self, request: pb.CreatePartnerRequest, context: Context
    ) -> pb.CreatePartnerResponse:
        user_id = check.required_uuid(request.user_id, "user_id")
        parent = check.uuid_field(request.parent_partner_id, "parent_partner_id", required=False)
        row = await partners.create_partner(
            self._deps, Caller.current(), user_id, parent, request.plan_id or None
        )
        return pb.CreatePartnerResponse(partner=partner_message(row))

    async def GetPartner(
        self, request: pb.GetPartnerRequest, context: Context
    ) -> pb.GetPartnerResponse:
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        found = await queries.partner_with_links(self._deps, partner_id)
        if found is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        row, links = found
        return pb.GetPartnerResponse(
            partner=partner_message(row), links=[link_message(r) for r in links]
        )

    async def ApprovePartner(
        self, request: pb.ApprovePartnerRequest, context: Context
    ) -> pb.ApprovePartnerResponse:
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        row = await partners.approve_partner(self._deps, Caller.current(), partner_id)
        return pb.ApprovePartnerResponse(partner=partner_message(row))

    async def MovePartner(
        self, request: pb.MovePartnerRequest, context: Context
    ) -> pb.MovePartnerResponse:
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        parent = check.uuid_field(
            request.new_parent_partner_id, "new_parent_partner_id", required=False
        )
        row, moved = await partners.move_partner(
            self._deps, Caller.current(), partner_id, parent, check.reason(request.reason)
        )
        return pb.MovePartnerResponse(partner=partner_message(row), moved=moved)

    async def AssignPlan(
        self, request: pb.AssignPlanRequest, context: Context
    ) -> pb.AssignPlanResponse:
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        row = await partners.assign_plan(self._deps, Caller.current(), partner_id, request.plan_id)
        return pb.AssignPlanResponse(partner=partner_message(row))

    async def ReattributeClient(
        self, request: pb.ReattributeClientRequest, context: Context
    ) -> pb.ReattributeClientResponse:
        client = check.required_uuid(request.client_user_id, "client_user_id")
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        previous = await partners.reattribute(
            self._deps, Caller.current(), client, partner_id, check.reason(request.reason)
        )
        return pb.ReattributeClientResponse(previous_partner_id=str(previous or ""))

    async def CreatePlan(
        self, request: pb.CreatePlanRequest, context: Context
    ) -> pb.CreatePlanResponse:
        plans.check_plan_id(request.plan_id)
        created = await plans.create_plan(
            self._deps,
            Caller.current(),
            request.plan_id,
            request.name,
            check.plan_terms(request.terms),
            check.time_field(
                request.effective_from, request.HasField("effective_from"), "effective_from"
            ),
        )
        return pb.CreatePlanResponse(version=version_message(created))

    async def CreatePlanVersion(
        self, request: pb.CreatePlanVersionRequest, context: Context
    ) -> pb.CreatePlanVersionResponse:
        plans.check_plan_id(request.plan_id)
        created = await plans.create_plan_version(
            self._deps,
            Caller.current(),
            request.plan_id,
            check.plan_terms(request.terms),
            check.time_field(
                request.effective_from, request.HasField("effective_from"), "effective_from"
            ),
        )
        return pb.CreatePlanVersionResponse(version=version_message(created))

    async def GetPlan(self, request: pb.GetPlanRequest, context: Context) -> pb.GetPlanResponse:
        plans.check_plan_id(request.plan_id)
        name, versions = await plans.get_plan(self._deps, request.plan_id)
        return pb.GetPlanResponse(
            plan_id=request.plan_id,
            name=name,
            versions=[version_message(v, c) for v, c in versions],
        )

    async def CreateStatement(
        self, request: pb.CreateStatementRequest, context: Context
    ) -> pb.CreateStatementResponse:
        partner_id = check.required_uuid(request.partner_id, "partner_id")
        row = await statements.create_statement(
            self._deps,
            Caller.current(),
            partner_id,
            check.time_field(
                request.period_start, request.HasField("period_start"), "period_start"
            ),
            check.time_field(request.period_end, request.HasField("period_end"), "period_end"),
        )
        return pb.CreateStatementResponse(
            statement=statement_message(row, await queries.lines(self._deps, row["id"]))
        )

    async def ApproveStatement(
        self, request: pb.ApproveStatementRequest, context: Context
    ) -> pb.ApproveStatementResponse:
        statement_id = check.required_uuid(request.statement_id, "statement_id")
        check.approval(request.server, request.login, request.idempotency_key)
        row = await statements.approve_statement(
            self._deps,
            Caller.current(),
            statement_id,
            request.server,
            request.login,
            request.idempotency_key,
        )
        return pb.ApproveStatementResponse(
            statement=statement_message(row, await queries.lines(self._deps, row["id"]))
        )

    async def SettleRevenueShare(
        self, request: pb.SettleRevenueShareRequest, context: Context
    ) -> pb.SettleRevenueShareResponse:
        entries = await statements.settle_revenue_share(
            self._deps,
            Caller.current(),
            check.time_field(
                request.period_start, request.HasField("period_start"), "period_start"
            ),
            check.time_field(request.period_end, request.HasField("period_end"), "period_end"),
        )
        return pb.SettleRevenueShareResponse(entries=entries)
