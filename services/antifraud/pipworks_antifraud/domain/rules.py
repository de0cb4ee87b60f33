"""Rules as data: a condition, the events it looks at, a score, a severity and actions.

A rule is identified by a slug (``structuring``) and versioned: every change is a new
version, and exactly one version of a rule is current. ``SHADOW`` rules are evaluated and
their scores recorded, but they raise no alert and take no action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from pipworks_antifraud.domain.expressions import (
    BOOL,
    NUM,
    STR,
    Condition,
    ExpressionError,
    Schema,
    compile_condition,
)
from pipworks_platform.errors import Violations

# What happened, as the engine sees it.
KINDS = (
    "REGISTERED",
    "LOGIN",
    "LOGIN_FAILED",
    "KYC_APPROVED",
    "ACCOUNT_OPENED",
    "TRADE",
    "DEPOSIT",
    "WITHDRAWAL",
    "IB_PAYOUT",
    "CREDIT",
)
MODES = ("LIVE", "SHADOW", "DISABLED")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
ACTIONS = ("ALERT", "OPEN_CASE", "RESTRICT_WITHDRAWALS", "RESTRICT_TRADING", "RESTRICT_LOGIN")
RESTRICTING = ("RESTRICT_WITHDRAWALS", "RESTRICT_TRADING", "RESTRICT_LOGIN")

# Fields of an event, by name (``event.<name>`` in a condition, bare in a filter).
EVENT_FIELDS: Mapping[str, str] = {
    "kind": STR,
    "amount": NUM,
    "currency": STR,
    "payment_method": STR,
    "payment_country": STR,
    "symbol": STR,
    "volume": NUM,
    "price": NUM,
    "profit": NUM,
    "entry": NUM,
    "hold_seconds": NUM,
    "win": BOOL,
    "country": STR,
    "geo_known": BOOL,
    "new_country": BOOL,
    "distance_km": NUM,
    "speed_kmh": NUM,
}
CLIENT_FIELDS: Mapping[str, str] = {
    "kyc_country": STR,
    "registered_country": STR,
    "risk_rating": STR,
    "accounts": NUM,
    "age_days": NUM,
}
SHARED_FIELDS: Mapping[str, str] = {"device": NUM, "ip": NUM, "instrument": NUM}
# Per-client series an aggregate can read, and the event kinds that feed them.
MEASURES: Mapping[str, tuple[str, ...]] = {
    "deposit": ("DEPOSIT",),
    "withdrawal": ("WITHDRAWAL",),
    "trade": ("TRADE",),
    "close": ("TRADE",),
    "login": ("LOGIN",),
    "login_failed": ("LOGIN_FAILED",),
    "ib_payout": ("IB_PAYOUT",),
    "credit": ("CREDIT",),
}
BASELINE_METRICS = frozenset({"volume", "deposits", "trades"})

SCHEMA = Schema(
    fields={
        **{f"event.{k}": v for k, v in EVENT_FIELDS.items()},
        **{f"client.{k}": v for k, v in CLIENT_FIELDS.items()},
        **{f"shared.{k}": v for k, v in SHARED_FIELDS.items()},
    },
    measures={measure: EVENT_FIELDS for measure in MEASURES},
    baseline_metrics=BASELINE_METRICS,
)

RULE_ID = re.compile(r"[a-z][a-z0-9-]{2,62}")
REASON = re.compile(r"[A-Z][A-Z0-9_]{1,62}")
MAX_SCORE = Decimal(1000)
MAX_RESTRICTION_HOURS = 24 * 366
MAX_COOLDOWN_SECONDS = 366 * 86400


@dataclass(frozen=True)
class RuleSpec:
    rule_id: str
    version: int
    name: str
    description: str
    event_kinds: tuple[str, ...]
    condition: str
    score: Decimal
    severity: str
    actions: tuple[str, ...]
    mode: str
    reason: str
    restriction_hours: int = 0
    cooldown_seconds: int = 0

    @property
    def live(self) -> bool:
        return self.mode == "LIVE"

    def next_version(self, **changes: object) -> RuleSpec:
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    condition: Condition


def compile_rule(spec: RuleSpec, *, prefix: str = "rule") -> CompiledRule:
    """Check every field of ``spec``; InvalidArgument lists each bad field by its path."""
    v = Violations()
    v.check(
        RULE_ID.fullmatch(spec.rule_id),
        f"{prefix}.rule_id",
        "must be 3-63 lower-case letters, digits or '-', starting with a letter",
    )
    v.check(0 < len(spec.name.strip()) <= 200, f"{prefix}.name", "must be 1-200 characters")
    v.check(
        len(spec.description) <= 2000, f"{prefix}.description", "must be at most 2000 characters"
    )
    if not spec.event_kinds:
        v.add(f"{prefix}.event_kinds", f"must name at least one of {', '.join(KINDS)}")
    for kind in spec.event_kinds:
        v.check(kind in KINDS, f"{prefix}.event_kinds", f"unknown event kind {kind!r}")
    v.check(
        len(set(spec.event_kinds)) == len(spec.event_kinds),
        f"{prefix}.event_kinds",
        "must not repeat a kind",
    )
    v.check(0 <= spec.score <= MAX_SCORE, f"{prefix}.score", "must be between 0 and 1000")
    v.check(
        spec.severity in SEVERITIES, f"{prefix}.severity", f"must be one of {', '.join(SEVERITIES)}"
    )
    v.check(spec.mode in MODES, f"{prefix}.mode", f"must be one of {', '.join(MODES)}")
    for action in spec.actions:
        v.check(action in ACTIONS, f"{prefix}.actions", f"unknown action {action!r}")
    v.check(len(set(spec.actions)) == len(spec.actions), f"{prefix}.actions", "must not repeat")
    v.check(
        REASON.fullmatch(spec.reason),
        f"{prefix}.reason",
        "must be an UPPER_SNAKE code such as RAPID_IN_OUT",
    )
    v.check(
        0 <= spec.restriction_hours <= MAX_RESTRICTION_HOURS,
        f"{prefix}.restriction_hours",
        "must be between 0 (no expiry) and 8784",
    )
    v.check(
        0 <= spec.cooldown_seconds <= MAX_COOLDOWN_SECONDS,
        f"{prefix}.cooldown_seconds",
        "must be between 0 and 366 days",
    )
    condition = None
    try:
        condition = compile_condition(spec.condition, SCHEMA)
    except ExpressionError as exc:
        v.add(f"{prefix}.condition", str(exc))
    v.raise_if_any(reason="INVALID_RULE")
    assert condition is not None
    return CompiledRule(spec, condition)


# -- the built-in rule set -------------------------------------------------------------

LARGE = "USD=10000 EUR=10000 GBP=8000 CHF=10000 JPY=1500000 *=10000"
NEAR = f'amount >= 0.9 * limit_for(currency, "{LARGE}") and amount < limit_for(currency, "{LARGE}")'
SHORT = "hold_seconds >= 0 and hold_seconds < 60"


def _rule(
    rule_id: str,
    name: str,
    description: str,
    kinds: tuple[str, ...],
    condition: str,
    score: int,
    severity: str,
    actions: tuple[str, ...],
    reason: str,
    *,
    restriction_hours: int = 0,
    cooldown_seconds: int = 0,
) -> RuleSpec:
    return RuleSpec(
        rule_id,
        1,
        name,
        description,
        kinds,
        condition,
        Decimal(score),
        severity,
        actions,
        "LIVE",
        reason,
        restriction_hours,
        cooldown_seconds,
    )


BUILTIN_RULES: tuple[RuleSpec, ...] = (
    _rule(
        "large-transaction",
        "Large single deposit or withdrawal",
        "One deposit or withdrawal at or above the reporting threshold of its currency.",
        ("DEPOSIT", "WITHDRAWAL"),
        f'event.amount >= limit_for(event.currency, "{LARGE}")',
        40,
        "HIGH",
        ("ALERT",),
        "LARGE_TRANSACTION",
    ),
    _rule(
        "structuring",
        "Structuring under the threshold",
        "Three or more deposits within 24 hours, each just under the reporting threshold.",
        ("DEPOSIT",),
        f"{NEAR.replace('amount', 'event.amount').replace('currency', 'event.currency')}"
        f" and count(deposit, 24h, {NEAR}) >= 3",
        50,
        "HIGH",
        ("ALERT", "OPEN_CASE"),
        "STRUCTURING",
        cooldown_seconds=3600,
    ),
    _rule(
        "rapid-in-out",
        "Money in and out with little trading",
        "Withdrawals of at least 80% of the week's deposits with under 1 lot traded.",
        ("WITHDRAWAL",),
        "sum(deposit, 7d) > 0 and sum(withdrawal, 7d) >= 0.8 * sum(deposit, 7d)"
        " and sum(trade, 7d) < 1",
        60,
        "HIGH",
        ("ALERT", "OPEN_CASE", "RESTRICT_WITHDRAWALS"),
        "RAPID_IN_OUT",
        restriction_hours=72,
    ),
    _rule(
        "withdrawal-velocity",
        "Withdrawal velocity",
        "Four or more withdrawals within 24 hours.",
        ("WITHDRAWAL",),
        "count(withdrawal, 24h) >= 4",
        25,
        "MEDIUM",
        ("ALERT",),
        "WITHDRAWAL_VELOCITY",
        cooldown_seconds=3600,
    ),
    _rule(
        "shared-device",
        "Many accounts on one device",
        "The login's device id has been used by four or more clients.",
        ("LOGIN",),
        "shared.device >= 4",
        30,
        "MEDIUM",
        ("ALERT",),
        "SHARED_DEVICE",
        cooldown_seconds=86400,
    ),
    _rule(
        "shared-ip",
        "Many accounts from one IP address",
        "The login's IP address has been used by six or more clients.",
        ("LOGIN",),
        "shared.ip >= 6",
        20,
        "MEDIUM",
        ("ALERT",),
        "SHARED_IP",
        cooldown_seconds=86400,
    ),
    _rule(
        "shared-instrument",
        "Many accounts funded by one card or wallet",
        "The deposit's payment instrument has funded three or more clients.",
        ("DEPOSIT",),
        "shared.instrument >= 3",
        50,
        "HIGH",
        ("ALERT", "OPEN_CASE"),
        "SHARED_INSTRUMENT",
        cooldown_seconds=86400,
    ),
    _rule(
        "new-country-login",
        "Login from a new country",
        "A login from a country the client has not logged in from before.",
        ("LOGIN",),
        "event.new_country",
        10,
        "LOW",
        ("ALERT",),
        "NEW_COUNTRY",
    ),
    _rule(
        "impossible-travel",
        "Impossible travel",
        "Two logins further apart than a plane could fly in the time between them.",
        ("LOGIN",),
        "event.distance_km > 500 and event.speed_kmh > 900",
        40,
        "HIGH",
        ("ALERT", "OPEN_CASE"),
        "IMPOSSIBLE_TRAVEL",
    ),
    _rule(
        "deposit-country-mismatch",
        "Deposit from outside the KYC country",
        "A deposit whose payment instrument is from a country other than the verified one.",
        ("DEPOSIT",),
        'event.payment_country != "" and client.kyc_country != ""'
        " and event.payment_country != client.kyc_country",
        20,
        "MEDIUM",
        ("ALERT",),
        "COUNTRY_MISMATCH",
        cooldown_seconds=86400,
    ),
    _rule(
        "latency-arbitrage",
        "Latency arbitrage pattern",
        "Twenty or more trades closed within a minute of opening in 24 hours, 75% of them won.",
        ("TRADE",),
        f"event.entry == 1 and count(close, 24h, {SHORT}) >= 20"
        f" and count(close, 24h, {SHORT} and profit > 0) >= 0.75 * count(close, 24h, {SHORT})",
        40,
        "HIGH",
        ("ALERT", "OPEN_CASE", "RESTRICT_TRADING"),
        "LATENCY_ARBITRAGE",
        restriction_hours=24,
        cooldown_seconds=86400,
    ),
    _rule(
        "volume-deviation",
        "Traded volume far above the client's own baseline",
        "Today's traded lots against the client's last 30 days (robust z-score).",
        ("TRADE",),
        "baseline(volume) >= 4 and today(volume) >= 10",
        20,
        "MEDIUM",
        ("ALERT",),
        "BEHAVIOUR_VOLUME",
        cooldown_seconds=86400,
    ),
    _rule(
        "deposit-deviation",
        "Deposits far above the client's own baseline",
        "Today's deposits against the client's last 30 days (robust z-score).",
        ("DEPOSIT",),
        "baseline(deposits) >= 4 and today(deposits) >= 1000",
        20,
        "MEDIUM",
        ("ALERT",),
        "BEHAVIOUR_DEPOSITS",
        cooldown_seconds=86400,
    ),
    _rule(
        "trade-frequency-deviation",
        "Trade count far above the client's own baseline",
        "Today's number of deals against the client's last 30 days (robust z-score).",
        ("TRADE",),
        "baseline(trades) >= 4 and today(trades) >= 50",
        20,
        "MEDIUM",
        ("ALERT",),
        "BEHAVIOUR_TRADES",
        cooldown_seconds=86400,
    ),
)
