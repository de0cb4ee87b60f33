"""Proto ↔ domain conversions and request checks for the gRPC surface."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal

from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_kyc.adapters.repositories import Hit
from pipworks_kyc.domain.applications import Application, State
from pipworks_kyc.domain.documents import DocumentInfo, Status
from pipworks_kyc.domain.risk import Rating
from pipworks_kyc.domain.templates import (
    ClientType,
    DocumentSpec,
    FieldSpec,
    FieldType,
    LevelSpec,
    Template,
    parse_decimal,
)
from pipworks_platform import page_tokens
from pipworks_platform.errors import InvalidArgument, Violations

CLIENT_TYPES = {
    pb.CLIENT_TYPE_UNSPECIFIED: ClientType.INDIVIDUAL,
    pb.CLIENT_TYPE_INDIVIDUAL: ClientType.INDIVIDUAL,
    pb.CLIENT_TYPE_CORPORATE: ClientType.CORPORATE,
}
CLIENT_TYPE_TO_PROTO = {
    ClientType.INDIVIDUAL: pb.CLIENT_TYPE_INDIVIDUAL,
    ClientType.CORPORATE: pb.CLIENT_TYPE_CORPORATE,
}
FIELD_TYPES = {
    pb.FIELD_TYPE_TEXT: FieldType.TEXT,
    pb.FIELD_TYPE_DATE: FieldType.DATE,
    pb.FIELD_TYPE_COUNTRY: FieldType.COUNTRY,
    pb.FIELD_TYPE_CHOICE: FieldType.CHOICE,
    pb.FIELD_TYPE_NUMBER: FieldType.NUMBER,
}
FIELD_TYPE_TO_PROTO = {v: k for k, v in FIELD_TYPES.items()}
STATES = {
    pb.APPLICATION_STATE_DRAFT: State.DRAFT,
    pb.APPLICATION_STATE_SUBMITTED: State.SUBMITTED,
    pb.APPLICATION_STATE_IN_REVIEW: State.IN_REVIEW,
    pb.APPLICATION_STATE_APPROVED: State.APPROVED,
    pb.APPLICATION_STATE_REJECTED: State.REJECTED,
    pb.APPLICATION_STATE_INFORMATION_REQUESTED: State.INFORMATION_REQUESTED,
}
STATE_TO_PROTO = {v: k for k, v in STATES.items()}
RATINGS = {
    pb.RISK_RATING_LOW: Rating.LOW,
    pb.RISK_RATING_MEDIUM: Rating.MEDIUM,
    pb.RISK_RATING_HIGH: Rating.HIGH,
}
RATING_TO_PROTO = {v: k for k, v in RATINGS.items()}
HIT_STATUS_TO_PROTO = {
    "open": pb.HIT_STATUS_OPEN,
    "cleared": pb.HIT_STATUS_CLEARED,
    "confirmed": pb.HIT_STATUS_CONFIRMED,
}
DOC_STATUS_TO_PROTO = {
    Status.ACTIVE: pb.DOCUMENT_STATUS_ACTIVE,
    Status.REPLACED: pb.DOCUMENT_STATUS_REPLACED,
    Status.EXPIRED: pb.DOCUMENT_STATUS_EXPIRED,
}
_COUNTRY = re.compile(r"[A-Z]{2}")
DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_FIELDS = 100


def uuid_field(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument.for_field(name, "must be a UUID") from None


def caller_id(subject: str) -> uuid.UUID:
    try:
        return uuid.UUID(subject)
    except ValueError:
        raise InvalidArgument("the caller is not a client user", reason="NOT_A_CLIENT") from None


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument.for_field("page_size", "must not be negative")
    return min(value or DEFAULT_PAGE, MAX_PAGE)


def cursor(token: str, query: str) -> tuple[datetime, uuid.UUID] | None:
    if not token:
        return None
    try:
        c = page_tokens.decode(token, query)
        return datetime.fromisoformat(c["at"]), uuid.UUID(c["id"])
    except (page_tokens.BadPageToken, KeyError, ValueError, TypeError) as exc:
        raise InvalidArgument.for_field("page_token", str(exc) or "is not valid") from None


def next_token(at: datetime, item_id: uuid.UUID, query: str) -> str:
    return page_tokens.encode({"at": at.isoformat(), "id": str(item_id)}, query)


MAX_REPORT_HOURS = 24 * 366 * 10
MAX_REPORT_DAYS = 366 * 10


def report_horizons(pending_hours: int, expiring_days: int) -> tuple[int, int]:
    """GetComplianceReport's thresholds (0 means the default: 24 hours, 30 days)."""
    v = Violations()
    v.check(
        0 <= pending_hours <= MAX_REPORT_HOURS,
        "pending_older_than_hours",
        f"must be between 0 and {MAX_REPORT_HOURS}",
    )
    v.check(
        0 <= expiring_days <= MAX_REPORT_DAYS,
        "expiring_within_days",
        f"must be between 0 and {MAX_REPORT_DAYS}",
    )
    v.raise_if_any()
    return pending_hours or 24, expiring_days or 30


def country(value: str, field_name: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise InvalidArgument.for_field(field_name, "must be an ISO 3166-1 alpha-2 code")
    return value


def rating(value: int, field_name: str) -> Rating:
    if value not in RATINGS:
        raise InvalidArgument.for_field(field_name, "must be LOW, MEDIUM or HIGH")
    return RATINGS[value]


def answers(fields: dict[str, str]) -> dict[str, str]:
    if len(fields) > MAX_FIELDS:
        raise InvalidArgument.for_field("fields", f"at most {MAX_FIELDS} fields")
    return {k: v.strip() for k, v in fields.items()}


def template_from_proto(t: pb.RequirementTemplate) -> Template:
    v = Violations()
    if t.client_type not in (pb.CLIENT_TYPE_INDIVIDUAL, pb.CLIENT_TYPE_CORPORATE):
        v.add("template.client_type", "must be INDIVIDUAL or CORPORATE")
    fields: list[FieldSpec] = []
    for i, f in enumerate(t.fields):
        if f.type not in FIELD_TYPES:
            v.add(f"template.fields[{i}].type", "is required")
            continue
        bounds = {}
        for name in ("min", "max"):
            text = getattr(f, name)
            number = parse_decimal(text) if text else None
            if text and number is None:
                v.add(f"template.fields[{i}].{name}", "must be a decimal number")
            bounds[name] = number
        fields.append(
            FieldSpec(
                name=f.name,
                type=FIELD_TYPES[f.type],
                required=f.required,
                pattern=f.pattern,
                min=bounds["min"],
                max=bounds["max"],
                allowed_values=tuple(f.allowed_values),
                label=f.label,
            )
        )
    levels: list[LevelSpec] = []
    for i, lv in enumerate(t.levels):
        limit = parse_decimal(lv.deposit_limit) if lv.deposit_limit else None
        if lv.deposit_limit and (limit is None or limit < 0):
            v.add(f"template.levels[{i}].deposit_limit", "must be a non-negative decimal")
        levels.append(LevelSpec(lv.level, lv.description, limit))
    v.raise_if_any(reason="TEMPLATE_INVALID")
    return Template(
        template_id=t.template_id,
        version=0,
        client_type=CLIENT_TYPES[t.client_type],
        country_code=t.country_code,
        fields=tuple(fields),
        documents=tuple(
            DocumentSpec(
                key=d.key,
                accepted_kinds=tuple(d.accepted_kinds),
                max_age_days=d.max_age_days,
                identity=d.identity,
                level=d.level or 1,
            )
            for d in t.documents
        ),
        levels=tuple(levels),
    )


def _dec(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def template_to_proto(t: Template) -> pb.RequirementTemplate:
    return pb.RequirementTemplate(
        template_id=t.template_id,
        version=t.version,
        client_type=CLIENT_TYPE_TO_PROTO[t.client_type],
        country_code=t.country_code,
        fields=[
            pb.FieldRequirement(
                name=f.name,
                type=FIELD_TYPE_TO_PROTO[f.type],
                required=f.required,
                pattern=f.pattern,
                min=_dec(f.min),
                max=_dec(f.max),
                allowed_values=list(f.allowed_values),
                label=f.label,
            )
            for f in t.fields
        ],
        documents=[
            pb.DocumentRequirement(
                key=d.key,
                accepted_kinds=list(d.accepted_kinds),
                max_age_days=d.max_age_days,
                identity=d.identity,
                level=d.level,
            )
            for d in t.documents
        ],
        levels=[
            pb.LevelDefinition(
                level=lv.level, description=lv.description, deposit_limit=_dec(lv.deposit_limit)
            )
            for lv in t.levels
        ],
    )


def application_to_proto(app: Application, *, with_answers: bool = True) -> pb.Application:
    message = pb.Application(
        application_id=str(app.id),
        user_id=str(app.user_id),
        template_id=app.template_id,
        template_version=app.template_version,
        client_type=CLIENT_TYPE_TO_PROTO[app.client_type],
        state=STATE_TO_PROTO[app.state],
        fields=app.answers if with_answers else {},
        country_code=app.country_code,
        currency=app.currency,
        reviewer_id=app.reviewer_id or "",
        reason=app.reason,
        level=app.level,
        first_approver_id=app.first_approver_id or "",
    )
    if app.risk is not None:
        message.risk.CopyFrom(
            pb.RiskAssessment(
                rating=RATING_TO_PROTO[app.risk.rating],
                score=app.risk.score,
                factors=[
                    pb.RiskFactor(name=f.name, points=f.points, detail=f.detail)
                    for f in app.risk.factors
                ],
                overridden=app.risk.overridden,
                override_reason=app.risk.override_reason,
            )
        )
    if app.submitted_at is not None:
        message.submitted_at.FromDatetime(app.submitted_at)
    message.created_at.FromDatetime(app.created_at)
    message.updated_at.FromDatetime(app.updated_at)
    return message


def client_view(app: Application) -> pb.Application:
    """What the applicant sees: no risk assessment and no reviewer identities (a client
    must not learn how compliance rated them, nor be tipped off about screening)."""
    message = application_to_proto(app)
    message.ClearField("risk")
    message.reviewer_id = ""
    message.first_approver_id = ""
    return message


def document_to_proto(
    doc: DocumentInfo, uploaded_at: datetime | None, *, with_number: bool
) -> pb.Document:
    message = pb.Document(
        document_id=str(doc.id),
        user_id=str(doc.user_id),
        kind=doc.kind,
        content_type=doc.content_type,
        size_bytes=doc.size,
        issued_on=doc.issued_on.isoformat() if doc.issued_on else "",
        expires_on=doc.expires_on.isoformat() if doc.expires_on else "",
        document_number=doc.number if with_number else "",
        status=DOC_STATUS_TO_PROTO[doc.status],
    )
    if uploaded_at is not None:
        message.uploaded_at.FromDatetime(uploaded_at)
    return message


def hit_to_proto(hit: Hit) -> pb.ScreeningHit:
    return pb.ScreeningHit(
        hit_id=str(hit.id),
        user_id=str(hit.user_id),
        application_id=str(hit.application_id or ""),
        list_source=hit.list_source,
        list_entry_id=hit.list_entry_id,
        entry_name=hit.entry_name,
        topics=list(hit.topics),
        score=str(hit.score),
        status=HIT_STATUS_TO_PROTO[hit.status],
        resolution_reason=hit.resolution_reason,
    )
