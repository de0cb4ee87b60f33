"""The streaming engine: update a client's state with one event, then evaluate the rules.

The engine is pure and deterministic: it reads the event's own time (never the clock),
so replaying the same events over the same state gives the same decisions. Aggregates
include the event being evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipworks_antifraud.domain.expressions import AggregateRef
from pipworks_antifraud.domain.geo import Location, haversine_km, travel_speed_kmh
from pipworks_antifraud.domain.rules import EVENT_FIELDS, CompiledRule, RuleSpec
from pipworks_antifraud.domain.state import (
    ClientState,
    DistinctSeries,
    LastLogin,
    Series,
    bucket_width,
    median,
    robust_z,
)

ZERO = Decimal(0)
ONE = Decimal(1)
TENTH = Decimal("0.1")
_DEFAULTS: dict[str, Any] = {
    name: (ZERO if kind == "number" else False if kind == "boolean" else "")
    for name, kind in EVENT_FIELDS.items()
}


@dataclass
class Fact:
    """One event in the engine's terms: what happened to whom, when, with which fields.

    ``fields`` holds every :data:`EVENT_FIELDS` name (defaults filled in) plus helpers
    (``position_id``, ``latitude``...). ``keys`` are the hashed device / IP / instrument
    identifiers of the shared-by indexes, and ``shared`` how many clients share each.
    """

    event_id: str
    subject: str
    user_id: str
    kind: str
    at: float
    fields: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)
    shared: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        event_id: str,
        subject: str,
        user_id: str,
        kind: str,
        at: float,
        keys: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Fact:
        return cls(
            event_id,
            subject,
            user_id,
            kind,
            at,
            {**_DEFAULTS, **fields},
            {k: v for k, v in (keys or {}).items() if v},
        )

    def to_document(self) -> dict[str, Any]:
        """The compact form kept for back-testing."""
        return {
            "k": self.kind,
            "t": self.at,
            "s": self.subject,
            "f": {
                k: (str(v) if isinstance(v, Decimal) else v)
                for k, v in self.fields.items()
                if v != _DEFAULTS.get(k)
            },
            "x": self.keys,
        }

    @classmethod
    def from_document(cls, event_id: str, user_id: str, doc: Mapping[str, Any]) -> Fact:
        fields = dict(_DEFAULTS)
        for key, value in doc.get("f", {}).items():
            fields[key] = Decimal(value) if EVENT_FIELDS.get(key) == "number" else value
        return cls(
            event_id, doc.get("s", ""), user_id, doc["k"], doc["t"], fields, dict(doc.get("x", {}))
        )


@dataclass(frozen=True)
class EngineConfig:
    baseline_days: int = 30
    baseline_min_days: int = 7


@dataclass(frozen=True)
class Hit:
    """A rule whose condition held, with the values it read."""

    spec: RuleSpec
    values: dict[str, str]
    suppressed: bool  # within the rule's cooldown: recorded, no new alert or action

    @property
    def acts(self) -> bool:
        return self.spec.live and not self.suppressed


@dataclass(frozen=True)
class Decision:
    fact: Fact
    hits: tuple[Hit, ...]

    @property
    def score(self) -> Decimal:
        return sum((h.spec.score for h in self.hits if h.spec.live), ZERO)

    @property
    def shadow_score(self) -> Decimal:
        return sum((h.spec.score for h in self.hits if not h.spec.live), ZERO)


@dataclass(frozen=True)
class _Plan:
    series_id: str
    measure: str
    ref: AggregateRef
    width: int
    retention: int


def series_id(ref: AggregateRef) -> str:
    return f"{ref.series_key}@{bucket_width(ref.window_seconds)}"


def measures_of(fact: Fact) -> list[tuple[str, Decimal]]:
    """The per-client series an event feeds, each with the value a sum adds."""
    kind, f = fact.kind, fact.fields
    if kind == "DEPOSIT":
        return [("deposit", f["amount"])]
    if kind == "WITHDRAWAL":
        return [("withdrawal", f["amount"])]
    if kind == "TRADE":
        found = [("trade", f["volume"])]
        if f["entry"] in (1, 3):
            found.append(("close", f["profit"]))
        return found
    if kind == "LOGIN":
        return [("login", ONE)]
    if kind == "LOGIN_FAILED":
        return [("login_failed", ONE)]
    if kind == "IB_PAYOUT":
        return [("ib_payout", f["amount"])]
    if kind == "CREDIT":
        return [("credit", f["amount"])]
    return []


class RuleSet:
    """The current rules, indexed by event kind, with the series their aggregates need."""

    def __init__(self, rules: Iterable[CompiledRule], config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.rules = [r for r in rules if r.spec.mode != "DISABLED"]
        self.by_kind: dict[str, list[CompiledRule]] = {}
        plans: dict[str, _Plan] = {}
        for rule in self.rules:
            for kind in rule.spec.event_kinds:
                self.by_kind.setdefault(kind, []).append(rule)
            for ref in rule.condition.aggregates:
                key = series_id(ref)
                known = plans.get(key)
                retention = max(ref.window_seconds, known.retention if known else 0)
                plans[key] = _Plan(
                    key, ref.measure, ref, bucket_width(ref.window_seconds), retention
                )
        self.plans = plans
        self.by_measure: dict[str, list[_Plan]] = {}
        for plan in plans.values():
            self.by_measure.setdefault(plan.measure, []).append(plan)

    def version_key(self) -> tuple[tuple[str, int, str], ...]:
        return tuple(sorted((r.spec.rule_id, r.spec.version, r.spec.mode) for r in self.rules))


class _Scope:
    def __init__(self, ruleset: RuleSet, state: ClientState, fact: Fact) -> None:
        self.ruleset = ruleset
        self.state = state
        self.fact = fact
        self.now = fact.at
        self._cache: dict[AggregateRef, Decimal] = {}

    def field(self, name: str) -> Any:
        area, _, key = name.partition(".")
        if area == "event":
            return self.fact.fields[key]
        if area == "shared":
            return Decimal(self.fact.shared.get(key, 0))
        state = self.state
        if key == "accounts":
            return Decimal(state.accounts)
        if key == "age_days":
            first = state.first_seen if state.first_seen is not None else self.now
            return Decimal(int((self.now - first) // 86400))
        return {
            "kyc_country": state.kyc_country,
            "registered_country": state.registered_country,
            "risk_rating": state.risk_rating,
        }[key]

    def aggregate(self, ref: AggregateRef) -> Decimal:
        cached = self._cache.get(ref)
        if cached is not None:
            return cached
        key = series_id(ref)
        if ref.function == "distinct":
            dseries = self.state.distinct.get(key)
            value = Decimal(dseries.distinct(self.now, ref.window_seconds) if dseries else 0)
        else:
            series = self.state.series.get(key)
            count, total = series.totals(self.now, ref.window_seconds) if series else (0, ZERO)
            value = Decimal(count) if ref.function == "count" else total
        self._cache[ref] = value
        return value

    def baseline(self, function: str, metric: str) -> Decimal:
        config = self.ruleset.config
        today, history = self.state.day_history(self.now, metric, config.baseline_days)
        if function == "today":
            return today
        if function == "median":
            return median(history)
        if len(history) < config.baseline_min_days:
            return ZERO
        return robust_z(today, history)


def process(ruleset: RuleSet, state: ClientState, fact: Fact) -> Decision:
    """Fold ``fact`` into ``state`` and evaluate every rule that looks at its kind."""
    if state.first_seen is None or fact.at < state.first_seen:
        state.first_seen = fact.at
    _derive(state, fact)
    _update_profile(state, fact)
    _update_series(ruleset, state, fact)
    _update_days(ruleset, state, fact)
    scope = _Scope(ruleset, state, fact)
    hits: list[Hit] = []
    for rule in ruleset.by_kind.get(fact.kind, ()):
        if not rule.condition.evaluate(scope):
            continue
        spec = rule.spec
        cooldown_key = spec.rule_id if spec.live else f"shadow:{spec.rule_id}"
        last = state.fired.get(cooldown_key)
        suppressed = last is not None and 0 <= fact.at - last < spec.cooldown_seconds
        if not suppressed:
            state.fired[cooldown_key] = fact.at
        hits.append(Hit(spec, rule.condition.explain(scope), suppressed))
    _remember(state, fact)
    return Decision(fact, tuple(hits))


def _derive(state: ClientState, fact: Fact) -> None:
    f = fact.fields
    if fact.kind == "LOGIN" and f.get("geo_known"):
        here = Location(f["country"], f.get("latitude", 0.0), f.get("longitude", 0.0))
        f["new_country"] = bool(state.countries) and here.country not in state.countries
        last = state.last_login
        if last is not None:
            distance = haversine_km(Location(last.country, last.latitude, last.longitude), here)
            speed = travel_speed_kmh(distance, max(0.0, fact.at - last.at))
            f["distance_km"] = Decimal(distance).quantize(TENTH)
            f["speed_kmh"] = Decimal(speed).quantize(TENTH)
    elif fact.kind == "TRADE":
        position = str(f.get("position_id", ""))
        if f["entry"] in (1, 3):
            opened = state.positions.pop(position, None) if position else None
            f["hold_seconds"] = (
                Decimal(int(max(0.0, fact.at - opened))) if opened is not None else Decimal(-1)
            )
            f["win"] = f["profit"] > 0
        elif position:
            state.open_position(position, fact.at)


def _update_profile(state: ClientState, fact: Fact) -> None:
    f = fact.fields
    if fact.kind == "REGISTERED":
        state.registered_country = str(f.get("registered_country", ""))
    elif fact.kind == "KYC_APPROVED":
        state.kyc_country = str(f.get("kyc_country", ""))
        state.risk_rating = str(f.get("risk_rating", ""))
    elif fact.kind == "ACCOUNT_OPENED":
        state.accounts += 1


def _update_series(ruleset: RuleSet, state: ClientState, fact: Fact) -> None:
    for measure, value in measures_of(fact):
        for plan in ruleset.by_measure.get(measure, ()):
            ref = plan.ref
            if ref.filter is not None and not ref.filter(fact.fields):
                continue
            if ref.function == "distinct":
                dseries = state.distinct.get(plan.series_id)
                if dseries is None:
                    dseries = state.distinct[plan.series_id] = DistinctSeries(plan.width)
                dseries.add(fact.at, str(fact.fields.get(ref.attribute, "")))
                dseries.prune(fact.at, plan.retention)
            else:
                series = state.series.get(plan.series_id)
                if series is None:
                    series = state.series[plan.series_id] = Series(plan.width)
                series.add(fact.at, value)
                series.prune(fact.at, plan.retention)
    # Series no rule reads any more are dropped, so memory follows the rule set.
    for stale in [k for k in state.series if k not in ruleset.plans]:
        del state.series[stale]
    for stale in [k for k in state.distinct if k not in ruleset.plans]:
        del state.distinct[stale]


def _update_days(ruleset: RuleSet, state: ClientState, fact: Fact) -> None:
    f = fact.fields
    if fact.kind == "TRADE":
        state.add_day(fact.at, volume=f["volume"], trades=1)
    elif fact.kind == "DEPOSIT":
        state.add_day(fact.at, deposits=f["amount"])
    else:
        return
    state.prune_days(fact.at, ruleset.config.baseline_days + 1)


def _remember(state: ClientState, fact: Fact) -> None:
    f = fact.fields
    if fact.kind == "LOGIN" and f.get("geo_known"):
        state.last_login = LastLogin(
            fact.at, f["country"], float(f.get("latitude", 0.0)), float(f.get("longitude", 0.0))
        )
        state.remember_country(f["country"])


class SharedIndex:
    """In-memory shared-by index (device / IP / instrument -> clients), for back-tests."""

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], set[str]] = {}

    def observe(self, fact: Fact) -> None:
        for kind, key in fact.keys.items():
            users = self._users.setdefault((kind, key), set())
            users.add(fact.user_id)
            fact.shared[kind] = len(users)
