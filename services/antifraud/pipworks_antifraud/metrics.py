"""Prometheus metrics of the anti-fraud service (served with the platform's)."""

from __future__ import annotations

from prometheus_client import Counter

ALERTS_RAISED = Counter(
    "pipworks_antifraud_alerts_raised_total",
    "Alerts raised by live rules and committed, by severity and rule.",
    ["severity", "rule"],
)
