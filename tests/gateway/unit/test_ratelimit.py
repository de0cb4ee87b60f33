"""Token buckets: refill, atomic charging, class fallback, bounded memory, configuration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipworks_gateway.ratelimit import (
    DEFAULT_LIMITS,
    BucketTable,
    Limit,
    RateLimiter,
    Refusal,
    parse_rate_limits,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(text: str, clock: Clock, **kwargs) -> RateLimiter:
    return RateLimiter(parse_rate_limits(text), clock=clock, **kwargs)


def test_a_burst_is_allowed_then_calls_are_paced_by_the_rate():
    clock = Clock()
    limits = limiter("auth.ip=2/3", clock)
    assert [limits.admit("auth", "1.1.1.1", None) for _ in range(3)] == [None] * 3
    assert limits.admit("auth", "1.1.1.1", None) == Refusal(
        "auth", "ip", timedelta(milliseconds=500)
    )
    clock.now += 0.25
    refusal = limits.admit("auth", "1.1.1.1", None)
    assert refusal == Refusal("auth", "ip", timedelta(milliseconds=250))
    clock.now += 0.25
    assert limits.admit("auth", "1.1.1.1", None) is None
    assert limits.admit("auth", "2.2.2.2", None) is None  # another address, its own bucket


def test_a_refused_call_costs_nothing_in_any_bucket():
    clock = Clock()
    limits = limiter("default.ip=100/100,default.subject=1/1", clock)
    assert limits.admit("default", "1.1.1.1", "alice") is None
    for _ in range(50):  # alice is out of budget; her refusals spend none of the address's
        assert limits.admit("default", "1.1.1.1", "alice") is not None
    for _ in range(99):
        assert limits.admit("default", "1.1.1.1", None) is None


def test_the_longest_wait_is_reported_when_several_limits_refuse():
    clock = Clock()
    limits = limiter("default.ip=10/1,default.subject=1/1", clock)
    assert limits.admit("default", "1.1.1.1", "alice") is None
    assert limits.admit("default", "1.1.1.1", "alice") == Refusal(
        "default", "subject", timedelta(seconds=1)
    )


def test_an_unconfigured_class_uses_the_default_limits_and_off_means_unlimited():
    clock = Clock()
    limits = limiter("default.ip=1/1,auth.ip=off", clock)
    assert limits.admit("payments", "1.1.1.1", None) is None
    assert limits.admit("payments", "1.1.1.1", None) == Refusal(
        "default", "ip", timedelta(seconds=1)
    )
    assert all(limits.admit("auth", "1.1.1.1", None) is None for _ in range(1000))


def test_buckets_that_refilled_are_dropped_and_memory_is_capped():
    clock = Clock()
    table = BucketTable(Limit(rate=1, burst=2), max_keys=3)
    for key in ("a", "b", "c"):
        table.refilled(key, clock.now).tokens -= 1
    assert len(table) == 3
    table.refilled("d", clock.now)  # at the cap: the least recently used ("a") goes
    assert len(table) == 3
    clock.now += 10  # every bucket has refilled: as good as absent
    table.refilled("e", clock.now)
    assert len(table) == 1


def test_rate_limit_configuration_overrides_the_defaults():
    limits = parse_rate_limits(" auth.ip=5/10 , payments.subject=0.5/2,default.subject=off")
    assert limits[("auth", "ip")] == Limit(5, 10)
    assert limits[("payments", "subject")] == Limit(0.5, 2)
    assert limits[("default", "subject")] is None
    assert limits[("default", "ip")] == DEFAULT_LIMITS[("default", "ip")]
    assert parse_rate_limits("") == dict(DEFAULT_LIMITS)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("auth=5/10", "is not CLASS.ip=RATE/BURST"),
        ("auth.user=5/10", "is not CLASS.ip=RATE/BURST"),
        ("Auth.ip=5/10", "is not CLASS.ip=RATE/BURST"),
        ("auth.ip=5", "is not RATE/BURST"),
        ("auth.ip=-1/10", "is not RATE/BURST"),
        ("auth.ip=0/10", "rate must be above 0"),
        ("auth.ip=1/0", "burst at least 1"),
    ],
)
def test_bad_rate_limits_are_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_rate_limits(text)
