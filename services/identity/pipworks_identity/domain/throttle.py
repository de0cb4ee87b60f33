"""Per-client-address throttling of credential checks: a token bucket.

A bucket holds up to ``capacity`` tokens and refills continuously at ``refill_per_second``;
each attempt takes one. Bursts up to the capacity pass, a sustained guessing rate is held
to the refill rate, and the caller learns exactly when the next attempt would pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated_at: datetime


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    state: BucketState
    retry_after: timedelta


@dataclass(frozen=True)
class TokenBucketPolicy:
    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")

    def full(self, now: datetime) -> BucketState:
        return BucketState(tokens=float(self.capacity), updated_at=now)

    def take(self, state: BucketState, now: datetime) -> BucketDecision:
        """Refill for the time elapsed since ``state``, then take one token if there is one."""
        elapsed = max(0.0, (now - state.updated_at).total_seconds())
        tokens = min(float(self.capacity), state.tokens + elapsed * self.refill_per_second)
        if tokens >= 1.0:
            return BucketDecision(True, BucketState(tokens - 1.0, now), timedelta(0))
        wait = math.ceil((1.0 - tokens) / self.refill_per_second)
        return BucketDecision(False, BucketState(tokens, now), timedelta(seconds=max(1, wait)))

    def idle_after(self) -> timedelta:
        """How long an untouched bucket takes to refill completely (it can then be forgotten)."""
        return timedelta(seconds=math.ceil(self.capacity / self.refill_per_second))
