"""Prometheus metrics of the gateway (served on the platform's metrics endpoint)."""

from __future__ import annotations

from prometheus_client import Counter

RATE_LIMITED = Counter(
    "pipworks_gateway_rate_limited_total",
    "Calls refused with RESOURCE_EXHAUSTED by a rate limit, by class and scope (ip, subject).",
    ["rate_limit_class", "scope"],
)
BACKEND_UNAVAILABLE = Counter(
    "pipworks_gateway_backend_unavailable_total",
    "Calls that could not reach their backend, by backend target.",
    ["backend"],
)
