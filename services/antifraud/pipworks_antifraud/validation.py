"""Request fields → domain values, with INVALID_ARGUMENT naming each bad field."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation

from pipworks.antifraud.v1 import antifraud_service_pb2 as pb
from pipworks_antifraud.domain.rules import MAX_RESTRICTION_HOURS, RuleSpec
from pipworks_platform.errors import InvalidArgument, Violations

DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_TEXT = 4000
REASON = re.compile(r"[A-Z][A-Z0-9_]{1,62}")

MODE_NAMES = {
    pb.RULE_MODE_LIVE: "LIVE",
    pb.RULE_MODE_SHADOW: "SHADOW",
    pb.RULE_MODE_DISABLED: "DISABLED",
}
MODE_VALUES = {v: k for k, v in MODE_NAMES.items()}
SEVERITY_NAMES = {
    pb.SEVERITY_LOW: "LOW",
    pb.SEVERITY_MEDIUM: "MEDIUM",
    pb.SEVERITY_HIGH: "HIGH",
    pb.SEVERITY_CRITICAL: "CRITICAL",
}
SEVERITY_VALUES = {v: k for k, v in SEVERITY_NAMES.items()}
ACTION_NAMES = {
    pb.RULE_ACTION_ALERT: "ALERT",
    pb.RULE_ACTION_OPEN_CASE: "OPEN_CASE",
    pb.RULE_ACTION_RESTRICT_WITHDRAWALS: "RESTRICT_WITHDRAWALS",
    pb.RULE_ACTION_RESTRICT_TRADING: "RESTRICT_TRADING",
    pb.RULE_ACTION_RESTRICT_LOGIN: "RESTRICT_LOGIN",
}
ACTION_VALUES = {v: k for k, v in ACTION_NAMES.items()}
STATUS_NAMES = {
    pb.CASE_STATUS_OPEN: "OPEN",
    pb.CASE_STATUS_INVESTIGATING: "INVESTIGATING",
    pb.CASE_STATUS_ESCALATED: "ESCALATED",
    pb.CASE_STATUS_CLOSED_FALSE_POSITIVE: "CLOSED_FALSE_POSITIVE",
    pb.CASE_STATUS_CLOSED_CONFIRMED: "CLOSED_CONFIRMED",
}
STATUS_VALUES = {v: k for k, v in STATUS_NAMES.items()}


def page_size(
    value: int, field: str = "page_size", default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE
) -> int:
    if value < 0:
        raise InvalidArgument.for_field(field, "must not be negative")
    return min(value or default, maximum)


def uuid_field(value: str, field: str, *, required: bool = True) -> uuid.UUID | None:
    if not value:
        if required:
            raise InvalidArgument.for_field(field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument.for_field(field, "must be a UUID") from None


def required_uuid(value: str, field: str) -> uuid.UUID:
    parsed = uuid_field(value, field)
    assert parsed is not None
    return parsed


def text(value: str, field: str, *, required: bool = True, maximum: int = MAX_TEXT) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidArgument.for_field(field, "is required")
    if len(value) > maximum:
        raise InvalidArgument.for_field(field, f"must be at most {maximum} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise InvalidArgument.for_field(field, "must not contain NUL characters")
    return value


def rule_spec(rule: pb.Rule, field: str = "rule") -> RuleSpec:
    """The request's rule; the domain checks the rest (condition, kinds, ranges)."""
    v = Violations()
    score = Decimal(0)
    try:
        score = Decimal(rule.score or "0")
        if not score.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        v.add(f"{field}.score", "must be a decimal number such as 25")
    severity = SEVERITY_NAMES.get(rule.severity)
    v.check(severity is not None, f"{field}.severity", "is required")
    mode = MODE_NAMES.get(rule.mode, "")  # unset: SHADOW for a new rule, kept on update
    v.check(rule.mode in MODE_NAMES or rule.mode == 0, f"{field}.mode", "is not a known mode")
    actions = []
    for action in rule.actions:
        name = ACTION_NAMES.get(action)
        if name is None:
            v.add(f"{field}.actions", f"{action} is not a known action")
        else:
            actions.append(name)
    v.raise_if_any(reason="INVALID_RULE")
    return RuleSpec(
        rule_id=rule.rule_id.strip(),
        version=1,
        name=rule.name,
        description=rule.description,
        event_kinds=tuple(k.strip().upper() for k in rule.event_kinds),
        condition=rule.condition,
        score=score,
        severity=severity or "LOW",
        actions=tuple(actions) or ("ALERT",),
        mode=mode,
        reason=rule.reason.strip(),
        restriction_hours=rule.restriction_hours,
        cooldown_seconds=rule.cooldown_seconds,
    )


def restriction_reason(value: str, field: str = "reason") -> str:
    value = value.strip()
    if not REASON.fullmatch(value):
        raise InvalidArgument.for_field(field, "must be an UPPER_SNAKE code such as CHARGEBACK")
    return value


def duration_hours(value: int, field: str = "duration_hours") -> int:
    if not 0 <= value <= MAX_RESTRICTION_HOURS:
        raise InvalidArgument.for_field(field, "must be between 0 (no expiry) and 8784")
    return value
