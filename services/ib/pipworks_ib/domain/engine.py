"""The commission engine: a deal (or a deposit, or a period's result) and the partner
chain in, ledger rows with their explanations out. Pure and deterministic.

Deal rules are priced once per position close ("round turn"): the closing deal carries
the volume, the lifetime (from the position's opening deal) and the commissions of both
sides, so a position earns commission exactly once and the minimum-lifetime rule can be
checked before anything accrues. Each row's amount is computed exactly and rounded once,
half-even, to the plan currency's precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipworks_ib.domain.money import ZERO, quantize, to_text
from pipworks_ib.domain.plans import (
    DEAL_RULES,
    HUNDRED,
    PlanTerms,
    PlanVersion,
    Rule,
    RuleKind,
    Share,
)

ENTRY_IN = 0
ENTRY_OUT = 1
ENTRY_INOUT = 2
ENTRY_OUT_BY = 3
CLOSING_ENTRIES = frozenset({ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY})


@dataclass(frozen=True)
class DealFact:
    """A trade deal as the bridge reported it."""

    server: str
    ticket: int
    login: int
    client_user_id: str
    position_id: int
    entry: int
    symbol: str
    volume: Decimal
    price: Decimal
    commission: Decimal
    profit: Decimal
    swap: Decimal
    executed_at: datetime
    currency: str

    @property
    def source_key(self) -> str:
        return f"{self.server}:{self.ticket}"

    @property
    def closes(self) -> bool:
        return self.entry in CLOSING_ENTRIES


@dataclass(frozen=True)
class Opening:
    """What the position's opening deal said: when, how much, at what commission."""

    opened_at: datetime
    volume: Decimal
    commission: Decimal


@dataclass(frozen=True)
class ChainLink:
    """A partner in the client's chain; index 0 is level 1 (the client's own partner)."""

    partner_id: str
    user_id: str
    plan_id: str | None = None


@dataclass(frozen=True)
class Accrual:
    partner_id: str
    level: int
    rule_id: str
    kind: RuleKind
    base: Decimal
    rate: Decimal
    amount: Decimal
    explanation: dict[str, Any]


@dataclass(frozen=True)
class Pricing:
    """The rows to write, or none with the reason (``note``) the IB portal can show."""

    accruals: tuple[Accrual, ...] = ()
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # What every row of this pricing shares: the source, the full chain, the plan and
    # each rule's numbers (``rules``). A row's own explanation holds its level's share.
    facts: dict[str, Any] = field(default_factory=dict)


def explain(facts: dict[str, Any], rule_id: str, level: int, own: dict[str, Any]) -> dict[str, Any]:
    """The full explanation of one row: shared facts, the chain up to the row's partner
    (never above it), the rule's numbers and the row's own share (``own``)."""
    shared = {k: v for k, v in facts.items() if k not in ("chain", "rules")}
    return {
        **shared,
        **facts.get("rules", {}).get(rule_id, {}),
        "chain": list(facts.get("chain", []))[:level],
        **own,
    }


def _share_for(terms: PlanTerms, link: ChainLink, level: int) -> Share | None:
    override = terms.overrides.get(link.partner_id)
    return override if override is not None else terms.distribution.share_at(level)


def distribute(
    terms: PlanTerms,
    rule: Rule,
    chain: Sequence[ChainLink],
    *,
    client_user_id: str,
    base: Decimal,
    pool: Decimal,
    units: Decimal,
) -> list[Accrual]:
    """Share ``pool`` (exact) up the chain. Percent shares never hand out more than the
    whole pool; fixed shares are ``fixed x units``. Zero amounts are not recorded."""
    rows: list[Accrual] = []
    used = ZERO
    pool_text = to_text(pool)
    units_text = to_text(units)
    for index, link in enumerate(chain):
        level = index + 1
        share = _share_for(terms, link, level)
        if share is None:
            continue
        if link.user_id == client_user_id and not terms.pay_own_trades:
            continue
        if share.percent is not None:
            percent = min(share.percent, HUNDRED - used)
            used += percent
            exact = pool * percent / HUNDRED
            rate = percent
            how = f"{to_text(percent)}% of {pool_text}"
        else:
            fixed = share.fixed or ZERO
            exact = fixed * units
            rate = fixed
            how = f"{to_text(fixed)} x {units_text}"
        amount = quantize(exact, terms.currency)
        if amount == 0:
            continue
        rows.append(
            Accrual(
                partner_id=link.partner_id,
                level=level,
                rule_id=rule.rule_id,
                kind=rule.kind,
                base=base,
                rate=rate,
                amount=amount,
                explanation={
                    "level": level,
                    "share": share.describe()
                    + (" (partner override)" if link.partner_id in terms.overrides else ""),
                    "computation": how,
                    "exact": to_text(exact),
                    "amount": to_text(amount),
                },
            )
        )
    return rows


def _deal_pool(
    terms: PlanTerms, rule: Rule, deal: DealFact, opening: Opening | None
) -> tuple[Decimal, Decimal, dict[str, Any]] | None:
    """(base, pool, facts) of one rule for a closing deal; None when it does not apply."""
    if not terms.applies_to(rule, deal.symbol):
        return None
    if rule.kind is RuleKind.PER_LOT:
        pool = deal.volume * rule.rate
        return deal.volume, pool, {"formula": "volume x rate per lot", "rate": to_text(rule.rate)}
    if rule.kind is RuleKind.SPREAD_SHARE:
        spec = terms.symbol(deal.symbol)
        if spec is None:
            return None
        base = deal.volume * spec.contract_size * spec.spread
        return (
            base,
            base * rule.rate / HUNDRED,
            {
                "formula": "volume x contract size x spread x rate%",
                "contract_size": to_text(spec.contract_size),
                "spread": to_text(spec.spread),
                "rate": f"{to_text(rule.rate)}%",
            },
        )
    if rule.kind is RuleKind.COMMISSION_SHARE:
        base = abs(deal.commission)
        opening_part = ZERO
        if opening is not None and opening.volume > 0:
            portion = min(Decimal(1), deal.volume / opening.volume)
            opening_part = abs(opening.commission) * portion
        base += opening_part
        return (
            base,
            base * rule.rate / HUNDRED,
            {
                "formula": "client commission (closing + opening share) x rate%",
                "closing_commission": to_text(abs(deal.commission)),
                "opening_commission_share": to_text(opening_part),
                "rate": f"{to_text(rule.rate)}%",
            },
        )
    return None


def price_deal(
    plan: PlanVersion, deal: DealFact, chain: Sequence[ChainLink], opening: Opening | None
) -> Pricing:
    """Commission rows of one deal under the plan version in force at its execution."""
    terms = plan.terms
    if not deal.closes:
        return Pricing(note="OPENING_DEAL")
    if not chain:
        return Pricing(note="NO_PARTNER")
    if deal.currency.upper() != terms.currency:
        return Pricing(note="CURRENCY_MISMATCH")
    facts: dict[str, Any] = {
        "deal": deal.source_key,
        "position": deal.position_id,
        "symbol": deal.symbol,
        "volume": to_text(deal.volume),
        "plan": plan.plan_id,
        "plan_version": plan.version,
        "currency": terms.currency,
        "rounding": "half-even, once per row",
        "chain": [link.partner_id for link in chain],
        "rules": {},
    }
    if opening is None:
        facts["lifetime"] = "opening not seen: the position predates the ledger"
    else:
        lifetime = (deal.executed_at - opening.opened_at).total_seconds()
        facts["lifetime_seconds"] = lifetime
        if lifetime < terms.min_lifetime_seconds:
            return Pricing(
                note="MIN_LIFETIME",
                details={"lifetime_seconds": lifetime, "minimum": terms.min_lifetime_seconds},
            )
    rows: list[Accrual] = []
    for rule in terms.rules_of(DEAL_RULES):
        priced = _deal_pool(terms, rule, deal, opening)
        if priced is None:
            continue
        base, pool, rule_facts = priced
        facts["rules"][rule.rule_id] = {
            "rule": rule.rule_id,
            "kind": rule.kind.value,
            **rule_facts,
            "base": to_text(base),
            "pool": to_text(pool),
        }
        rows += distribute(
            terms,
            rule,
            chain,
            client_user_id=deal.client_user_id,
            base=base,
            pool=pool,
            units=deal.volume,
        )
    capped = apply_cap(rows, terms.distribution.cap_per_deal)
    return Pricing(accruals=tuple(capped), facts=facts)


def apply_cap(rows: Sequence[Accrual], cap: Decimal | None) -> list[Accrual]:
    """Clip rows, in rule then level order, so their total stays within ``cap``."""
    if cap is None:
        return list(rows)
    left = cap
    capped: list[Accrual] = []
    for row in rows:
        amount = min(row.amount, left)
        left -= amount
        if amount <= 0:
            continue
        if amount != row.amount:
            explanation = {**row.explanation, "amount": to_text(amount), "cap": to_text(cap)}
            row = Accrual(**{**row.__dict__, "amount": amount, "explanation": explanation})
        capped.append(row)
    return capped


def _shared(plan: PlanVersion, chain: Sequence[ChainLink], **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "plan": plan.plan_id,
        "plan_version": plan.version,
        "currency": plan.terms.currency,
        "rounding": "half-even, once per row",
        "chain": [link.partner_id for link in chain],
        "rules": {},
    }


def price_cpa(
    plan: PlanVersion,
    client_user_id: str,
    chain: Sequence[ChainLink],
    deposit: Decimal,
    currency: str,
) -> Pricing:
    """CPA rows for a deposit: every CPA rule whose threshold it meets. Whether it is the
    client's first qualifying deposit is the ledger's unique key's business."""
    terms = plan.terms
    if not chain:
        return Pricing(note="NO_PARTNER")
    if currency.upper() != terms.currency:
        return Pricing(note="CURRENCY_MISMATCH")
    facts = _shared(plan, chain, deposit=to_text(deposit))
    rows: list[Accrual] = []
    for rule in terms.rules_of(frozenset({RuleKind.CPA})):
        if deposit < rule.threshold:
            continue
        facts["rules"][rule.rule_id] = {
            "rule": rule.rule_id,
            "kind": rule.kind.value,
            "formula": "CPA on the first deposit of at least the threshold",
            "threshold": to_text(rule.threshold),
            "pool": to_text(rule.rate),
        }
        rows += distribute(
            terms,
            rule,
            chain,
            client_user_id=client_user_id,
            base=deposit,
            pool=rule.rate,
            units=Decimal(1),
        )
    return Pricing(accruals=tuple(rows), note="" if rows else "BELOW_THRESHOLD", facts=facts)


def price_revenue_share(
    plan: PlanVersion,
    client_user_id: str,
    chain: Sequence[ChainLink],
    client_result: Decimal,
    period: str,
) -> Pricing:
    """Revenue share of the client's net loss in ``period`` (``client_result`` is the sum
    of profit, swap and commission of the client's closed deals; a loss is negative)."""
    terms = plan.terms
    loss = -client_result if client_result < 0 else ZERO
    if not chain or loss == 0:
        return Pricing(note="NO_NET_LOSS" if chain else "NO_PARTNER")
    facts = _shared(plan, chain, period=period, net_loss=to_text(loss))
    rows: list[Accrual] = []
    for rule in terms.rules_of(frozenset({RuleKind.REVENUE_SHARE})):
        pool = loss * rule.rate / HUNDRED
        facts["rules"][rule.rule_id] = {
            "rule": rule.rule_id,
            "kind": rule.kind.value,
            "formula": "client net loss x rate%",
            "rate": f"{to_text(rule.rate)}%",
            "pool": to_text(pool),
        }
        rows += distribute(
            terms,
            rule,
            chain,
            client_user_id=client_user_id,
            base=loss,
            pool=pool,
            units=Decimal(1),
        )
    return Pricing(accruals=tuple(rows), facts=facts)
