"""Plans and a naive reference pricing, shared by the unit and integration tests.

The reference recomputes commissions independently of the engine: plain loops over the
chain with the rules written out, so a disagreement points at one of the two."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

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

FX = SymbolGroup("FX majors", ("EURUSD", "GBPUSD", "USDJPY"))
METALS = SymbolGroup("Metals", ("XAU*", "XAG*"))
LEVEL_PERCENTS = (
    Decimal(40),
    Decimal(20),
    Decimal(10),
    Decimal(8),
    Decimal(6),
    Decimal(5),
    Decimal(4),
    Decimal(3),
    Decimal("2.5"),
    Decimal("1.5"),
)


def ten_level_terms(**overrides: object) -> PlanTerms:
    values: dict[str, object] = {
        "currency": "USD",
        "symbol_groups": (FX, METALS),
        "symbols": (
            SymbolSpec("EURUSD", Decimal(100000), Decimal("0.00012")),
            SymbolSpec("XAUUSD", Decimal(100), Decimal("0.35")),
        ),
        "rules": (
            Rule("fx-lot", RuleKind.PER_LOT, Decimal("7"), "FX majors"),
            Rule("metal-lot", RuleKind.PER_LOT, Decimal("11.5"), "Metals"),
            Rule("fx-spread", RuleKind.SPREAD_SHARE, Decimal("15"), "FX majors"),
            Rule("commission", RuleKind.COMMISSION_SHARE, Decimal("30")),
            Rule("cpa", RuleKind.CPA, Decimal("200"), threshold=Decimal("500")),
            Rule("revshare", RuleKind.REVENUE_SHARE, Decimal("25")),
        ),
        "distribution": Distribution(tuple(Share(percent=p) for p in LEVEL_PERCENTS)),
        "min_lifetime_seconds": 60,
    }
    values.update(overrides)
    return PlanTerms(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Expected:
    partner_id: str
    level: int
    rule_id: str
    amount: Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def reference_deal(
    chain: Sequence[str],
    symbol: str,
    volume: Decimal,
    closing_commission: Decimal,
    opening_commission: Decimal,
) -> list[Expected]:
    """What ``ten_level_terms()`` pays for one closed position of one lot-size ``volume``
    (the whole position closed at once) to a chain of partner ids (level 1 first)."""
    pools: list[tuple[str, Decimal]] = []
    if symbol in ("EURUSD", "GBPUSD", "USDJPY"):
        pools.append(("fx-lot", volume * 7))
        if symbol == "EURUSD":
            pools.append(("fx-spread", volume * 100000 * Decimal("0.00012") * 15 / 100))
    if symbol.startswith(("XAU", "XAG")):
        pools.append(("metal-lot", volume * Decimal("11.5")))
    commission = abs(closing_commission) + abs(opening_commission)
    pools.append(("commission", commission * 30 / 100))
    expected = []
    for rule_id, pool in pools:
        for index, partner in enumerate(chain[: len(LEVEL_PERCENTS)]):
            amount = cents(pool * LEVEL_PERCENTS[index] / 100)
            if amount:
                expected.append(Expected(partner, index + 1, rule_id, amount))
    return expected


__all__ = ["BeyondLastLevel", "Expected", "reference_deal", "ten_level_terms"]
