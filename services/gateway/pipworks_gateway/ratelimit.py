"""Rate limits: token buckets per client address and per authenticated subject.

Each method's policy names a rate-limit class (``auth`` for credential endpoints,
``default`` otherwise). A class has a limit per client address (``ip``) and per token
subject (``subject``); a public call is charged to its address only. A call is admitted
only if every bucket it is charged to has a token, and then takes one from each, so a
refused call costs nothing.

Buckets live in memory, per gateway replica (the budget a client sees is the configured
one times the replicas). Memory is bounded: a bucket that has refilled is the same as
no bucket and is dropped; beyond ``max_keys`` per limit the least recently used go.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc

from pipworks_gateway.metadata import rate_limit_key
from pipworks_gateway.metrics import RATE_LIMITED
from pipworks_platform.auth import current_principal, policy_for
from pipworks_platform.errors import ResourceExhausted
from pipworks_platform.interceptors import wrap_handler
from pipworks_platform.peer import peer_ip

RATE_LIMITS_VARIABLE = "PIPWORKS_GATEWAY_RATE_LIMITS"
DEFAULT_CLASS = "default"
IP = "ip"
SUBJECT = "subject"
SCOPES = (IP, SUBJECT)
UNLIMITED = "off"


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: int


LimitKey = tuple[str, str]  # (rate-limit class, scope)
LimitConfig = Mapping[LimitKey, Limit | None]  # None: unlimited

DEFAULT_LIMITS: LimitConfig = {
    ("auth", IP): Limit(10.0, 20),
    ("auth", SUBJECT): Limit(10.0, 20),
    # Loose per address: whole offices and mobile carriers share one address.
    (DEFAULT_CLASS, IP): Limit(200.0, 400),
    (DEFAULT_CLASS, SUBJECT): Limit(50.0, 100),
}

_CLASS = re.compile(r"[a-z][a-z0-9_-]*")
_NUMBER = re.compile(r"\d+(\.\d+)?")


def parse_rate_limits(text: str) -> dict[LimitKey, Limit | None]:
    """Overrides ``CLASS.SCOPE=RATE/BURST`` (or ``=off``), comma-separated, over the defaults."""
    limits: dict[LimitKey, Limit | None] = dict(DEFAULT_LIMITS)
    problems: list[str] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, value = (part.strip() for part in entry.partition("="))
        rate_class, dot, scope = name.rpartition(".")
        if not sep or not dot or not _CLASS.fullmatch(rate_class) or scope not in SCOPES:
            problems.append(f"{entry!r} is not CLASS.ip=RATE/BURST or CLASS.subject=RATE/BURST")
            continue
        if value == UNLIMITED:
            limits[(rate_class, scope)] = None
            continue
        rate, slash, burst = value.partition("/")
        if not (slash and _NUMBER.fullmatch(rate) and burst.isdigit()):
            problems.append(f"{name}: {value!r} is not RATE/BURST (e.g. 10/20) or {UNLIMITED}")
        elif float(rate) <= 0 or int(burst) < 1:
            problems.append(f"{name}: rate must be above 0 and burst at least 1")
        else:
            limits[(rate_class, scope)] = Limit(float(rate), int(burst))
    if problems:
        raise ValueError("; ".join(problems))
    return limits


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class BucketTable:
    """The buckets of one limit, by client key, least recently used first."""

    def __init__(self, limit: Limit, *, max_keys: int) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def refilled(self, key: str, now: float) -> _Bucket:
        """The bucket of ``key`` with the tokens earned since it was last seen."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = _Bucket(self.limit.burst, now)
        else:
            earned = (now - bucket.updated) * self.limit.rate
            bucket.tokens = min(self.limit.burst, bucket.tokens + earned)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def wait(self, bucket: _Bucket) -> float:
        """Seconds until ``bucket`` holds a whole token (0 if it does)."""
        return max(0.0, (1 - bucket.tokens) / self.limit.rate)

    def _make_room(self, now: float) -> None:
        """Drop buckets that have refilled (as good as absent), then any over the cap."""
        rate, burst = self.limit.rate, self.limit.burst
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            full = oldest.tokens + (now - oldest.updated) * rate >= burst
            if not (full or len(self._buckets) >= self._max_keys):
                return
            self._buckets.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Refusal:
    rate_class: str
    scope: str
    retry_after: timedelta


class RateLimiter:
    def __init__(
        self,
        limits: LimitConfig,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tables: dict[LimitKey, BucketTable | None] = {
            key: None if limit is None else BucketTable(limit, max_keys=max_keys)
            for key, limit in limits.items()
        }
        self._clock = clock

    def _table(self, rate_class: str, scope: str) -> tuple[str, BucketTable | None]:
        if (rate_class, scope) in self._tables:
            return rate_class, self._tables[(rate_class, scope)]
        return DEFAULT_CLASS, self._tables.get((DEFAULT_CLASS, scope))

    def admit(self, rate_class: str, address: str, subject: str | None) -> Refusal | None:
        """Take a token from each bucket the call is charged to, or refuse and take none."""
        now = self._clock()
        charged: list[_Bucket] = []
        refusal: Refusal | None = None
        for scope, key in ((IP, address), (SUBJECT, subject)):
            used_class, table = self._table(rate_class, scope)
            if key is None or table is None:
                continue
            bucket = table.refilled(key, now)
            wait = table.wait(bucket)
            if wait > 0 and (refusal is None or wait > refusal.retry_after.total_seconds()):
                # Whole milliseconds, rounded up: retrying earlier would be refused again.
                retry_after = timedelta(milliseconds=math.ceil(wait * 1000))
                refusal = Refusal(used_class, scope, retry_after)
            charged.append(bucket)
        if refusal is not None:
            return refusal
        for bucket in charged:
            bucket.tokens -= 1
        return None


_UNTHROTTLED_SERVICES = frozenset({"grpc.health.v1.Health"})  # probes must never be refused


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    """Charges each call to its policy's class; placed after the auth interceptor so the
    caller's subject is known when the call runs."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        # Per method, decided on its first call (policies are fixed): None is unthrottled.
        self._throttles: dict[str, _Throttled | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: nothing to throttle, nothing to remember
            return handler
        method = handler_call_details.method
        if method not in self._throttles:
            self._throttles[method] = self._throttle_for(method)
        throttle = self._throttles[method]
        return handler if throttle is None else wrap_handler(handler, throttle)

    def _throttle_for(self, method: str) -> _Throttled | None:
        if method.split("/")[1] in _UNTHROTTLED_SERVICES:
            return None
        policy = policy_for(method)
        if policy is None:  # refused by the auth interceptor before it gets here
            return None
        return _Throttled(self._limiter, policy.rate_limit_class)


class _Throttled:
    def __init__(self, limiter: RateLimiter, rate_class: str) -> None:
        self._limiter = limiter
        self._rate_class = rate_class

    def _admit(self, context: grpc.aio.ServicerContext) -> None:
        principal = current_principal()
        refusal = self._limiter.admit(
            self._rate_class,
            rate_limit_key(peer_ip(context.peer())),
            principal.subject if principal is not None else None,
        )
        if refusal is not None:
            RATE_LIMITED.labels(refusal.rate_class, refusal.scope).inc()
            raise ResourceExhausted(
                "rate limit exceeded; retry later",
                retry_after=refusal.retry_after,
                reason="RATE_LIMITED",
                metadata={"rate_limit_class": refusal.rate_class, "scope": refusal.scope},
            )

    async def unary(self, behavior: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._admit(context)
        return await behavior(request, context)

    async def streaming(
        self, behavior: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        self._admit(context)
        async for response in behavior(request, context):
            yield response
