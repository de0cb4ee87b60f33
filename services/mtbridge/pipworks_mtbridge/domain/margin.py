"""Margin calls with hysteresis: one dip below a threshold is one event.

A threshold (say 100%) is *armed* until the margin level falls below it; it then fires
once and stays disarmed until the level recovers to the threshold plus a re-arm margin
(say 110%). A level that jitters around 100% therefore raises a single margin call. A
fall through several thresholds in one snapshot fires once, for the lowest crossed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class MarginPolicy:
    thresholds: tuple[Decimal, ...]  # percent, e.g. (100, 50)
    rearm_margin: Decimal  # percentage points above a threshold that re-arm it

    def __post_init__(self) -> None:
        if not self.thresholds or any(t <= 0 for t in self.thresholds):
            raise ValueError("margin call thresholds must be positive percentages")
        if self.rearm_margin < 0:
            raise ValueError("the re-arm margin must not be negative")
        object.__setattr__(self, "thresholds", tuple(sorted(set(self.thresholds), reverse=True)))


@dataclass(frozen=True)
class MarginDecision:
    disarmed: frozenset[Decimal]  # thresholds fired and not yet re-armed
    fired: Decimal | None  # the threshold to report now, if any


def evaluate(
    policy: MarginPolicy, disarmed: Iterable[Decimal], margin_level: Decimal | None
) -> MarginDecision:
    """Next state for one snapshot; ``margin_level`` None means no margin is held."""
    state = set(disarmed) & set(policy.thresholds)
    if margin_level is None:  # nothing at risk: every threshold is re-armed
        return MarginDecision(frozenset(), None)
    for threshold in policy.thresholds:
        if threshold in state and margin_level >= threshold + policy.rearm_margin:
            state.discard(threshold)
    crossed = [t for t in policy.thresholds if margin_level < t and t not in state]
    state.update(crossed)
    return MarginDecision(frozenset(state), min(crossed) if crossed else None)
