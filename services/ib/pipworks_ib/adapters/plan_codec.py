"""Plan terms as stored in ``plan_versions.terms`` (JSON with decimal strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _share_json(share: Share) -> dict[str, str]:
    if share.percent is not None:
        return {"percent": str(share.percent)}
    return {"fixed": str(share.fixed)}


def _share(raw: dict[str, str]) -> Share:
    return Share(percent=_dec(raw.get("percent")), fixed=_dec(raw.get("fixed")))


def terms_to_json(terms: PlanTerms) -> dict[str, Any]:
    return {
        "currency": terms.currency,
        "symbol_groups": [
            {"name": g.name, "patterns": list(g.patterns)} for g in terms.symbol_groups
        ],
        "symbols": [
            {"symbol": s.symbol, "contract_size": str(s.contract_size), "spread": str(s.spread)}
            for s in terms.symbols
        ],
        "rules": [
            {
                "rule_id": r.rule_id,
                "kind": r.kind.value,
                "rate": str(r.rate),
                "symbol_group": r.symbol_group,
                "threshold": str(r.threshold),
            }
            for r in terms.rules
        ],
        "distribution": {
            "levels": [_share_json(s) for s in terms.distribution.levels],
            "beyond": terms.distribution.beyond.value,
            "cap_per_deal": None
            if terms.distribution.cap_per_deal is None
            else str(terms.distribution.cap_per_deal),
        },
        "overrides": {k: _share_json(v) for k, v in terms.overrides.items()},
        "min_lifetime_seconds": terms.min_lifetime_seconds,
        "pay_own_trades": terms.pay_own_trades,
    }


def terms_from_json(raw: dict[str, Any]) -> PlanTerms:
    dist = raw["distribution"]
    return PlanTerms(
        currency=raw["currency"],
        symbol_groups=tuple(
            SymbolGroup(g["name"], tuple(g["patterns"])) for g in raw["symbol_groups"]
        ),
        symbols=tuple(
            SymbolSpec(s["symbol"], Decimal(s["contract_size"]), Decimal(s["spread"]))
            for s in raw["symbols"]
        ),
        rules=tuple(
            Rule(
                rule_id=r["rule_id"],
                kind=RuleKind(r["kind"]),
                rate=Decimal(r["rate"]),
                symbol_group=r["symbol_group"],
                threshold=Decimal(r["threshold"]),
            )
            for r in raw["rules"]
        ),
        distribution=Distribution(
            levels=tuple(_share(s) for s in dist["levels"]),
            beyond=BeyondLastLevel(dist["beyond"]),
            cap_per_deal=_dec(dist["cap_per_deal"]),
        ),
        overrides={k: _share(v) for k, v in raw["overrides"].items()},
        min_lifetime_seconds=raw["min_lifetime_seconds"],
        pay_own_trades=raw["pay_own_trades"],
    )
