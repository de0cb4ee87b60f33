"""Lockout escalation and the per-address token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipworks_identity.domain.lockout import LockoutPolicy
from pipworks_identity.domain.throttle import BucketState, TokenBucketPolicy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_fifth_failure_locks() -> None:
    policy = LockoutPolicy()
    assert [policy.locks_at(n) for n in range(1, 7)] == [False] * 4 + [True, True]


def test_each_lock_lasts_longer_until_the_schedule_tops_out() -> None:
    policy = LockoutPolicy()
    minutes = [policy.lock_duration(n) / timedelta(minutes=1) for n in range(7)]
    assert minutes == [1, 5, 15, 60, 240, 240, 240]
    assert policy.locked_until(NOW, 1) == NOW + timedelta(minutes=5)


def test_a_policy_must_be_sound() -> None:
    with pytest.raises(ValueError, match="threshold"):
        LockoutPolicy(threshold=0)
    with pytest.raises(ValueError, match="durations"):
        LockoutPolicy(durations=())


def test_a_bucket_passes_a_burst_then_holds_to_the_refill_rate() -> None:
    policy = TokenBucketPolicy(capacity=3, refill_per_second=0.5)
    state = policy.full(NOW)
    allowed = []
    for _ in range(4):
        decision = policy.take(state, NOW)
        allowed.append(decision.allowed)
        state = decision.state
    assert allowed == [True, True, True, False]
    assert decision.retry_after == timedelta(seconds=2)
    later = policy.take(state, NOW + timedelta(seconds=2))
    assert later.allowed
    assert policy.idle_after() == timedelta(seconds=6)


def test_a_refused_attempt_does_not_drain_the_bucket() -> None:
    policy = TokenBucketPolicy(capacity=1, refill_per_second=1.0)
    empty = BucketState(tokens=0.0, updated_at=NOW)
    refused = policy.take(empty, NOW + timedelta(milliseconds=500))
    assert not refused.allowed
    assert refused.state.tokens == pytest.approx(0.5)
    assert policy.take(refused.state, NOW + timedelta(seconds=1)).allowed
