"""Explainable risk rating: every factor that contributed, its points, and the result.

Low / medium / high come from the total against two thresholds. The weights are data
(:class:`RiskPolicy`), configurable per deployment; the factors and the score are kept
with the rating so a reviewer or an auditor can see why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Rating(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Factor:
    name: str
    points: int
    detail: str


@dataclass(frozen=True)
class Assessment:
    rating: Rating
    score: int
    factors: tuple[Factor, ...]
    overridden: bool = False
    override_reason: str = ""

    def with_override(self, rating: Rating, reason: str) -> Assessment:
        return replace(self, rating=rating, overridden=True, override_reason=reason)

    def to_json(self) -> dict[str, object]:
        return {
            "rating": self.rating.value,
            "score": self.score,
            "factors": [
                {"name": f.name, "points": f.points, "detail": f.detail} for f in self.factors
            ],
            "overridden": self.overridden,
            "override_reason": self.override_reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Assessment:
        return cls(
            rating=Rating(str(data["rating"])),
            score=int(data["score"]),  # type: ignore[call-overload]
            factors=tuple(
                Factor(str(f["name"]), int(f["points"]), str(f["detail"]))
                for f in data.get("factors") or ()  # type: ignore[attr-defined]
            ),
            overridden=bool(data.get("overridden")),
            override_reason=str(data.get("override_reason") or ""),
        )


@dataclass(frozen=True)
class RiskPolicy:
    """Points per factor and the thresholds; defaults suit a retail FX broker."""

    country_points: Mapping[Rating, int] = None  # type: ignore[assignment]
    unknown_country: Rating = Rating.MEDIUM
    pep_points: int = 40
    sanctions_points: int = 100
    risky_sources: tuple[str, ...] = ("inheritance", "other")
    risky_source_points: int = 15
    deposits_over_half_income_points: int = 15
    deposits_over_income_points: int = 35
    young_age: int = 21
    old_age: int = 75
    age_points: int = 10
    antifraud_alert_points: int = 10
    antifraud_alert_cap: int = 30
    antifraud_restricted_points: int = 40
    medium_from: int = 30
    high_from: int = 60

    def __post_init__(self) -> None:
        if self.country_points is None:
            object.__setattr__(
                self, "country_points", {Rating.LOW: 0, Rating.MEDIUM: 20, Rating.HIGH: 60}
            )


@dataclass(frozen=True)
class Inputs:
    country_code: str
    country_rating: Rating | None
    topics_of_confirmed_hits: Sequence[Sequence[str]]
    source_of_funds: str
    annual_income: Decimal | None
    expected_deposits: Decimal | None
    date_of_birth: date | None
    today: date
    antifraud_alerts: int
    antifraud_restricted: bool


def assess(inputs: Inputs, policy: RiskPolicy) -> Assessment:
    factors: list[Factor] = []
    country = inputs.country_rating or policy.unknown_country
    label = "listed" if inputs.country_rating else "not listed, default"
    factors.append(
        Factor(
            "country",
            policy.country_points[country],
            f"{inputs.country_code or '??'} is {country} risk ({label})",
        )
    )
    sanctions = sum(
        1 for t in inputs.topics_of_confirmed_hits if any(x.startswith("sanction") for x in t)
    )
    peps = sum(
        1
        for t in inputs.topics_of_confirmed_hits
        if any(x.startswith("role.pep") or x == "pep" for x in t)
    )
    if sanctions:
        factors.append(
            Factor("sanctions", policy.sanctions_points, f"{sanctions} confirmed match(es)")
        )
    if peps:
        factors.append(Factor("pep", policy.pep_points, "politically exposed person"))
    if inputs.source_of_funds in policy.risky_sources:
        factors.append(
            Factor(
                "source_of_funds", policy.risky_source_points, f"declared {inputs.source_of_funds}"
            )
        )
    if inputs.expected_deposits is not None and inputs.annual_income is not None:
        income, deposits = inputs.annual_income, inputs.expected_deposits
        if deposits > income:
            factors.append(
                Factor(
                    "income_vs_deposits",
                    policy.deposits_over_income_points,
                    "deposits exceed income",
                )
            )
        elif deposits * 2 > income:
            factors.append(
                Factor(
                    "income_vs_deposits",
                    policy.deposits_over_half_income_points,
                    "deposits exceed half the income",
                )
            )
    if inputs.date_of_birth is not None:
        age = _age(inputs.date_of_birth, inputs.today)
        if age < policy.young_age or age > policy.old_age:
            factors.append(Factor("age", policy.age_points, f"applicant is {age}"))
    if inputs.antifraud_alerts:
        points = min(
            inputs.antifraud_alerts * policy.antifraud_alert_points, policy.antifraud_alert_cap
        )
        factors.append(Factor("antifraud_alerts", points, f"{inputs.antifraud_alerts} alert(s)"))
    if inputs.antifraud_restricted:
        factors.append(
            Factor("antifraud_restricted", policy.antifraud_restricted_points, "restricted")
        )
    score = sum(f.points for f in factors)
    if score >= policy.high_from:
        rating = Rating.HIGH
    elif score >= policy.medium_from:
        rating = Rating.MEDIUM
    else:
        rating = Rating.LOW
    return Assessment(rating=rating, score=score, factors=tuple(factors))


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
