"""Margin calls fire once per dip below a threshold and re-arm only after a recovery."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest

from pipworks_mtbridge.domain.margin import MarginPolicy, evaluate

POLICY = MarginPolicy(thresholds=(Decimal(100), Decimal(50)), rearm_margin=Decimal(10))


def fired(levels: Iterable[str | None], policy: MarginPolicy = POLICY) -> list[Decimal | None]:
    state: frozenset[Decimal] = frozenset()
    out = []
    for level in levels:
        decision = evaluate(policy, state, Decimal(level) if level is not None else None)
        state = decision.disarmed
        out.append(decision.fired)
    return out


def test_a_dip_below_a_threshold_fires_once() -> None:
    assert fired(["150", "99", "98", "95"]) == [None, Decimal(100), None, None]


def test_jitter_around_the_threshold_is_one_event() -> None:
    assert fired(["120", "99", "101", "99.5", "105", "99"]) == [None, Decimal(100)] + [None] * 4


def test_recovery_above_threshold_plus_margin_rearms() -> None:
    assert fired(["99", "110", "99"]) == [Decimal(100), None, Decimal(100)]
    assert fired(["99", "109.99", "99"]) == [Decimal(100), None, None]


def test_each_threshold_fires_on_the_way_down() -> None:
    assert fired(["120", "90", "60", "45", "40"]) == [None, Decimal(100), None, Decimal(50), None]


def test_a_fall_through_several_thresholds_fires_once_for_the_lowest() -> None:
    decision = evaluate(POLICY, frozenset(), Decimal(30))
    assert decision.fired == Decimal(50)
    assert decision.disarmed == {Decimal(100), Decimal(50)}


def test_partial_recovery_rearms_only_the_thresholds_left_behind() -> None:
    assert fired(["40", "65", "45", "95", "115", "95"]) == [
        Decimal(50),
        None,  # 65 >= 50 + 10: the 50% threshold re-arms; 100% stays disarmed
        Decimal(50),
        None,
        None,
        Decimal(100),
    ]


def test_no_margin_in_use_rearms_everything() -> None:
    assert fired(["99", None, "99"]) == [Decimal(100), None, Decimal(100)]


def test_thresholds_are_sorted_and_must_be_positive() -> None:
    policy = MarginPolicy(
        thresholds=(Decimal(50), Decimal(100), Decimal(50)), rearm_margin=Decimal(0)
    )
    assert policy.thresholds == (Decimal(100), Decimal(50))
    with pytest.raises(ValueError, match="positive"):
        MarginPolicy(thresholds=(Decimal(0),), rearm_margin=Decimal(1))
    with pytest.raises(ValueError, match="re-arm"):
        MarginPolicy(thresholds=(Decimal(100),), rearm_margin=Decimal(-1))
