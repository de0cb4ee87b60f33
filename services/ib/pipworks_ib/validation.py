"""Requests in, checked values out: every field problem becomes one INVALID_ARGUMENT
listing them all, before anything is read or written."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks_ib.domain.money import InvalidAmount, parse_decimal
from pipworks_ib.domain.plans import (
    BeyondLastLevel,
    Distribution,
    PlanTerms,
    Rule,
    RuleKind,
    Share,
    SymbolGroup,
    SymbolSpec,
)
from pipworks_platform.errors import InvalidArgument, Violations

RULE_KINDS = {
    pb.RULE_KIND_PER_LOT: RuleKind.PER_LOT,
    pb.RULE_KIND_SPREAD_SHARE: RuleKind.SPREAD_SHARE,
    pb.RULE_KIND_COMMISSION_SHARE: RuleKind.COMMISSION_SHARE,
    pb.RULE_KIND_CPA: RuleKind.CPA,
    pb.RULE_KIND_REVENUE_SHARE: RuleKind.REVENUE_SHARE,
}
RULE_KIND_NUMBERS = {v: k for k, v in RULE_KINDS.items()}
DIMENSIONS = {
    pb.SUMMARY_DIMENSION_DAY: "day",
    pb.SUMMARY_DIMENSION_SYMBOL: "symbol",
    pb.SUMMARY_DIMENSION_LEVEL: "level",
    pb.SUMMARY_DIMENSION_CLIENT: "client",
    pb.SUMMARY_DIMENSION_RULE: "rule",
}
_CAMPAIGN = re.compile(r"[A-Za-z0-9_-]{0,64}")
_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
MAX_REASON = 500


def uuid_field(raw: str, field: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw:
        if required:
            raise InvalidArgument.for_field(field, "is required")
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument.for_field(field, "must be a UUID") from None


def required_uuid(raw: str, field: str) -> uuid.UUID:
    value = uuid_field(raw, field)
    assert value is not None  # required=True never returns None
    return value


def time_field(stamp: Timestamp, present: bool, field: str) -> datetime | None:
    if not present:
        return None
    try:
        return stamp.ToDatetime(UTC)
    except ValueError:  # seconds outside years 1..9999, or nanos outside 0..999999999
        raise InvalidArgument.for_field(field, "must be a valid timestamp") from None


def campaign(raw: str) -> str:
    if not _CAMPAIGN.fullmatch(raw):
        raise InvalidArgument.for_field(
            "campaign", "letters, digits, '-' and '_', up to 64 characters"
        )
    return raw


def code(raw: str, field: str = "code") -> str:
    if not _CODE.fullmatch(raw.strip()):
        raise InvalidArgument.for_field(field, "is not a referral code")
    return raw.strip().upper()


def reason(raw: str) -> str:
    if len(raw) > MAX_REASON:
        raise InvalidArgument.for_field("reason", f"at most {MAX_REASON} characters")
    return raw


def dimension(value: int) -> str:
    if value not in DIMENSIONS:
        raise InvalidArgument.for_field("dimension", "choose a summary dimension")
    return DIMENSIONS[value]


def _decimal(v: Violations, text: str, field: str, *, default: Decimal | None = None) -> Decimal:
    if not text and default is not None:
        return default
    try:
        return parse_decimal(text)
    except InvalidAmount as exc:
        v.add(field, str(exc))
        return Decimal(0)


def _share(v: Violations, share: pb.LevelShare, field: str) -> Share:
    percent = _decimal(v, share.percent, f"{field}.percent") if share.percent else None
    fixed = _decimal(v, share.fixed, f"{field}.fixed") if share.fixed else None
    return Share(percent=percent, fixed=fixed)


def plan_terms(terms: pb.PlanTerms, field: str = "terms") -> PlanTerms:
    """Parse the wire form; the domain's ``validate_terms`` then checks the meaning."""
    v = Violations()
    rules = []
    for i, rule in enumerate(terms.rules):
        path = f"{field}.rules[{i}]"
        kind = RULE_KINDS.get(rule.kind)
        if kind is None:
            v.add(f"{path}.kind", "choose a rule kind")
            continue
        rules.append(
            Rule(
                rule_id=rule.rule_id,
                kind=kind,
                rate=_decimal(v, rule.rate, f"{path}.rate"),
                symbol_group=rule.symbol_group,
                threshold=_decimal(v, rule.threshold, f"{path}.threshold", default=Decimal(0)),
            )
        )
    symbols = [
        SymbolSpec(
            s.symbol,
            _decimal(v, s.contract_size, f"{field}.symbols[{i}].contract_size"),
            _decimal(v, s.spread, f"{field}.symbols[{i}].spread"),
        )
        for i, s in enumerate(terms.symbols)
    ]
    overrides: dict[str, Share] = {}
    for i, override in enumerate(terms.overrides):
        try:
            partner = str(uuid.UUID(override.partner_id))
        except ValueError:
            v.add(f"{field}.overrides[{i}].partner_id", "must be a UUID")
            continue
        overrides[partner] = _share(v, override.share, f"{field}.overrides[{i}].share")
    beyond = (
        BeyondLastLevel.REPEAT_LAST
        if terms.beyond == pb.BEYOND_LAST_LEVEL_REPEAT_LAST
        else BeyondLastLevel.NOTHING
    )
    cap = _decimal(v, terms.cap_per_deal, f"{field}.cap_per_deal") if terms.cap_per_deal else None
    parsed = PlanTerms(
        currency=terms.currency.upper(),
        rules=tuple(rules),
        distribution=Distribution(
            levels=tuple(_share(v, s, f"{field}.levels[{i}]") for i, s in enumerate(terms.levels)),
            beyond=beyond,
            cap_per_deal=cap,
        ),
        symbol_groups=tuple(SymbolGroup(g.name, tuple(g.patterns)) for g in terms.symbol_groups),
        symbols=tuple(symbols),
        overrides=overrides,
        min_lifetime_seconds=terms.min_lifetime_seconds,
        pay_own_trades=terms.pay_own_trades,
    )
    v.raise_if_any("the plan is not valid", reason="INVALID_PLAN")
    return parsed


def terms_message(terms: PlanTerms) -> pb.PlanTerms:
    def share(s: Share) -> pb.LevelShare:
        if s.percent is not None:
            return pb.LevelShare(percent=str(s.percent))
        return pb.LevelShare(fixed=str(s.fixed))

    return pb.PlanTerms(
        currency=terms.currency,
        symbol_groups=[
            pb.SymbolGroup(name=g.name, patterns=g.patterns) for g in terms.symbol_groups
        ],
        symbols=[
            pb.SymbolSpec(symbol=s.symbol, contract_size=str(s.contract_size), spread=str(s.spread))
            for s in terms.symbols
        ],
        rules=[
            pb.Rule(
                rule_id=r.rule_id,
                kind=RULE_KIND_NUMBERS[r.kind],
                rate=str(r.rate),
                symbol_group=r.symbol_group,
                threshold=str(r.threshold),
            )
            for r in terms.rules
        ],
        levels=[share(s) for s in terms.distribution.levels],
        beyond=pb.BEYOND_LAST_LEVEL_REPEAT_LAST
        if terms.distribution.beyond is BeyondLastLevel.REPEAT_LAST
        else pb.BEYOND_LAST_LEVEL_NOTHING,
        cap_per_deal=""
        if terms.distribution.cap_per_deal is None
        else str(terms.distribution.cap_per_deal),
        overrides=[
            pb.PartnerOverride(partner_id=k, share=share(s)) for k, s in terms.overrides.items()
        ],
        min_lifetime_seconds=terms.min_lifetime_seconds,
        pay_own_trades=terms.pay_own_trades,
    )


def approval(server: str, login: int, key: str) -> None:
    v = Violations()
    v.check(bool(server), "server", "is required")
    v.check(login > 0, "login", "must be a positive login")
    v.check(0 < len(key) <= 128, "idempotency_key", "is required (up to 128 characters)")
    v.raise_if_any()
