"""Prometheus metrics of the bridge (served with the platform's on PIPWORKS_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SYNC_LAG = Gauge(
    "pipworks_mtbridge_sync_lag_seconds",
    "Seconds since the start of the last deal sync pass that completed: the mirror and the "
    "published events hold every deal older than this.",
    ["server"],
)
DEALS_PUBLISHED = Counter(
    "pipworks_mtbridge_deals_published_total",
    "Deals mirrored and published, by kind (trade, balance).",
    ["server", "kind"],
)
SYNC_FAILURES = Counter(
    "pipworks_mtbridge_sync_failures_total",
    "Deal sync passes that failed (platform or database unavailable).",
    ["server"],
)
MARGIN_CALLS = Counter(
    "pipworks_mtbridge_margin_calls_total", "Margin calls raised, by server.", ["server"]
)
