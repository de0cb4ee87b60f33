"""Commission plans: versioned, effective-dated data, validated before anything is stored.

A plan version holds the symbol groups (name and symbol patterns), a per-symbol table
(contract size, typical spread in price units), the rules, the multi-level distribution,
per-partner overrides and the qualification rules. Versions are immutable: a change is a
new version effective from a later instant, so a deal is always priced with the version
in force at its execution time.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pipworks_ib.domain.money import digits_of
from pipworks_platform.errors import FailedPrecondition, Violations

HUNDRED = Decimal(100)
_RULE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_RULES = 64
MAX_LEVELS = 100  # defined levels; deeper levels follow ``beyond``


class RuleKind(StrEnum):
    PER_LOT = "per_lot"  # rate: amount per lot traded, by symbol group
    SPREAD_SHARE = "spread_share"  # rate: percent of the spread value
    COMMISSION_SHARE = "commission_share"  # rate: percent of the client's commission
    CPA = "cpa"  # rate: amount on the first deposit of at least ``threshold``
    REVENUE_SHARE = "revenue_share"  # rate: percent of the client's net loss in a period


DEAL_RULES = frozenset({RuleKind.PER_LOT, RuleKind.SPREAD_SHARE, RuleKind.COMMISSION_SHARE})
PERCENT_RULES = frozenset(
    {RuleKind.SPREAD_SHARE, RuleKind.COMMISSION_SHARE, RuleKind.REVENUE_SHARE}
)


class BeyondLastLevel(StrEnum):
    NOTHING = "nothing"  # partners deeper than the last defined level earn nothing
    REPEAT_LAST = "repeat_last"  # they earn the last defined level's share


@dataclass(frozen=True)
class SymbolGroup:
    """Named set of symbols by pattern (``*`` and ``?``, case-insensitive): "EURUSD", "XAU*"."""

    name: str
    patterns: tuple[str, ...]

    def matches(self, symbol: str) -> bool:
        upper = symbol.upper()
        return any(fnmatch.fnmatchcase(upper, p.upper()) for p in self.patterns)


@dataclass(frozen=True)
class SymbolSpec:
    """Per-symbol pricing data: contract size (units per lot) and spread in price units."""

    symbol: str
    contract_size: Decimal
    spread: Decimal


@dataclass(frozen=True)
class Share:
    """One level's share: a percent of the rule's amount, or a fixed amount (per lot for
    deal rules, per event for CPA and revenue share)."""

    percent: Decimal | None = None
    fixed: Decimal | None = None

    def describe(self) -> str:
        return f"{self.percent}%" if self.percent is not None else f"fixed {self.fixed}"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    kind: RuleKind
    rate: Decimal
    symbol_group: str = ""  # required for per-lot and spread rules; "" is every symbol
    threshold: Decimal = Decimal(0)  # CPA: minimum qualifying deposit


@dataclass(frozen=True)
class Distribution:
    levels: tuple[Share, ...]
    beyond: BeyondLastLevel = BeyondLastLevel.NOTHING
    cap_per_deal: Decimal | None = None  # over every rule and level of one deal

    def share_at(self, level: int) -> Share | None:
        if level <= len(self.levels):
            return self.levels[level - 1]
        if self.beyond is BeyondLastLevel.REPEAT_LAST and self.levels:
            return self.levels[-1]
        return None


@dataclass(frozen=True)
class PlanTerms:
    """Everything a version says, as submitted; ``validate`` checks it."""

    currency: str
    rules: tuple[Rule, ...]
    distribution: Distribution
    symbol_groups: tuple[SymbolGroup, ...] = ()
    symbols: tuple[SymbolSpec, ...] = ()
    overrides: dict[str, Share] = field(default_factory=dict)  # partner id -> share
    min_lifetime_seconds: int = 0
    pay_own_trades: bool = False

    def group(self, name: str) -> SymbolGroup | None:
        return next((g for g in self.symbol_groups if g.name == name), None)

    def symbol(self, symbol: str) -> SymbolSpec | None:
        upper = symbol.upper()
        return next((s for s in self.symbols if s.symbol.upper() == upper), None)

    def rules_of(self, kinds: frozenset[RuleKind]) -> list[Rule]:
        return [r for r in self.rules if r.kind in kinds]

    def applies_to(self, rule: Rule, symbol: str) -> bool:
        if not rule.symbol_group:
            return True
        group = self.group(rule.symbol_group)
        return group is not None and group.matches(symbol)


@dataclass(frozen=True)
class PlanVersion:
    plan_id: str
    version: int
    effective_from: datetime
    terms: PlanTerms


def _fine(value: Decimal, digits: int) -> bool:
    exponent = value.normalize().as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= digits


def _share_violations(v: Violations, path: str, share: Share, digits: int) -> None:
    if (share.percent is None) == (share.fixed is None):
        v.add(path, "give exactly one of percent and fixed")
        return
    if share.percent is not None:
        v.check(share.percent >= 0, f"{path}.percent", "must not be negative")
        v.check(share.percent <= HUNDRED, f"{path}.percent", "must not exceed 100")
    if share.fixed is not None:
        v.check(share.fixed >= 0, f"{path}.fixed", "must not be negative")
        v.check(_fine(share.fixed, digits + 4), f"{path}.fixed", "has more decimals than allowed")


def validate_terms(terms: PlanTerms) -> None:
    """Raise InvalidArgument listing every problem; return when the terms are usable."""
    v = Violations()
    currency_ok = v.check(
        bool(_CURRENCY.fullmatch(terms.currency)), "currency", "must be an ISO 4217 code"
    )
    digits = digits_of(terms.currency) if currency_ok else 2
    group_names: set[str] = set()
    for i, group in enumerate(terms.symbol_groups):
        path = f"symbol_groups[{i}]"
        v.check(bool(_GROUP_NAME.fullmatch(group.name)), f"{path}.name", "is not a valid name")
        v.check(group.name not in group_names, f"{path}.name", "is defined twice")
        group_names.add(group.name)
        v.check(bool(group.patterns), f"{path}.patterns", "needs at least one symbol pattern")
        for j, pattern in enumerate(group.patterns):
            v.check(
                bool(re.fullmatch(r"[A-Za-z0-9_.#*?-]{1,32}", pattern)),
                f"{path}.patterns[{j}]",
                "is not a symbol pattern",
            )
    seen_symbols: set[str] = set()
    for i, spec in enumerate(terms.symbols):
        path = f"symbols[{i}]"
        v.check(bool(spec.symbol.strip()), f"{path}.symbol", "is required")
        v.check(spec.symbol.upper() not in seen_symbols, f"{path}.symbol", "is listed twice")
        seen_symbols.add(spec.symbol.upper())
        v.check(spec.contract_size > 0, f"{path}.contract_size", "must be positive")
        v.check(spec.spread >= 0, f"{path}.spread", "must not be negative")
    v.check(bool(terms.rules), "rules", "a plan needs at least one rule")
    v.check(len(terms.rules) <= MAX_RULES, "rules", f"at most {MAX_RULES}")
    rule_ids: set[str] = set()
    for i, rule in enumerate(terms.rules):
        path = f"rules[{i}]"
        v.check(bool(_RULE_ID.fullmatch(rule.rule_id)), f"{path}.rule_id", "is not a valid id")
        v.check(rule.rule_id not in rule_ids, f"{path}.rule_id", "is used twice")
        rule_ids.add(rule.rule_id)
        v.check(rule.rate >= 0, f"{path}.rate", "must not be negative")
        if rule.kind in PERCENT_RULES:
            v.check(rule.rate <= HUNDRED, f"{path}.rate", "a percentage must not exceed 100")
        if rule.kind in (RuleKind.PER_LOT, RuleKind.SPREAD_SHARE):
            v.check(bool(rule.symbol_group), f"{path}.symbol_group", "is required for this rule")
        if rule.symbol_group:
            v.check(
                rule.symbol_group in group_names,
                f"{path}.symbol_group",
                "is not a symbol group of this plan",
            )
        if rule.kind is RuleKind.CPA:
            v.check(rule.threshold >= 0, f"{path}.threshold", "must not be negative")
            v.check(_fine(rule.rate, digits), f"{path}.rate", "is finer than the currency")
    dist = terms.distribution
    v.check(bool(dist.levels), "distribution.levels", "define at least one level")
    v.check(len(dist.levels) <= MAX_LEVELS, "distribution.levels", f"at most {MAX_LEVELS}")
    for i, share in enumerate(dist.levels):
        _share_violations(v, f"distribution.levels[{i}]", share, digits)
    total = sum((s.percent for s in dist.levels if s.percent is not None), Decimal(0))
    v.check(
        total <= HUNDRED, "distribution.levels", "percentages add up to more than 100% of the base"
    )
    if dist.cap_per_deal is not None:
        v.check(dist.cap_per_deal >= 0, "distribution.cap_per_deal", "must not be negative")
        v.check(
            _fine(dist.cap_per_deal, digits),
            "distribution.cap_per_deal",
            "is finer than the currency",
        )
    last = dist.levels[-1] if dist.levels else None
    if dist.beyond is BeyondLastLevel.REPEAT_LAST and last is not None and last.fixed:
        v.check(
            dist.cap_per_deal is not None,
            "distribution.cap_per_deal",
            "repeating a fixed amount to unlimited depth needs a cap per deal",
        )
    for partner_id, share in terms.overrides.items():
        _share_violations(v, f"overrides[{partner_id}]", share, digits)
    v.check(
        0 <= terms.min_lifetime_seconds <= 86_400 * 7,
        "min_lifetime_seconds",
        "must be between 0 and 604800",
    )
    v.raise_if_any("the plan is not valid", reason="INVALID_PLAN")


def check_new_version(
    existing: Sequence[PlanVersion], effective_from: datetime, now: datetime
) -> int:
    """The number of a new version starting at ``effective_from``; refuse overlaps and
    retroactive changes (history is never rewritten)."""
    if effective_from < now:
        raise FailedPrecondition(
            "a plan version cannot take effect in the past", reason="PLAN_VERSION_IN_PAST"
        )
    latest = max(existing, key=lambda p: p.version, default=None)
    if latest is not None and effective_from <= latest.effective_from:
        raise FailedPrecondition(
            "the new version must start after the latest version's start",
            reason="PLAN_VERSION_OVERLAP",
            metadata={"latest_effective_from": latest.effective_from.isoformat()},
        )
    return 1 if latest is None else latest.version + 1


def in_force(versions: Sequence[PlanVersion], at: datetime) -> PlanVersion | None:
    """The version in force at ``at``: the latest to start at or before it."""
    best: PlanVersion | None = None
    for version in versions:
        if version.effective_from <= at and (best is None or version.version > best.version):
            best = version
    return best
