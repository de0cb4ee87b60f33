"""Prometheus metrics every Pipworks process exposes on ``PIPWORKS_METRICS_PORT``."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPC_LATENCY = Histogram(
    "pipworks_rpc_server_duration_seconds",
    "Server-side gRPC call duration by method and status code.",
    ["service", "method", "code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge(
    "pipworks_outbox_backlog",
    "Events committed to the outbox and not yet acknowledged by JetStream.",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "pipworks_outbox_published_total", "Events published by the outbox relay.", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "pipworks_outbox_publish_failures_total",
    "Relay passes that failed to publish (NATS or PostgreSQL unavailable).",
    ["service"],
)
CONSUMER_PROCESSED = Counter(
    "pipworks_consumer_events_total",
    "Events handled by a consumer, by outcome (applied, duplicate, retried, dead_lettered).",
    ["service", "consumer", "outcome"],
)
CONSUMER_BATCHES = Counter(
    "pipworks_consumer_batches_total",
    "Fetched batches a batch handler applied in one transaction, or gave back to the "
    "one-by-one path (outcome applied, failed).",
    ["service", "consumer", "outcome"],
)
CONSUMER_REDELIVERIES = Counter(
    "pipworks_consumer_redeliveries_total",
    "Messages received with a delivery count above one.",
    ["service", "consumer"],
)
CONSUMER_LAG = Gauge(
    "pipworks_consumer_lag_messages",
    "Messages in the stream not yet delivered to the consumer (JetStream num_pending).",
    ["service", "consumer"],
)
CONSUMER_HANDLER_LATENCY = Histogram(
    "pipworks_consumer_handler_duration_seconds",
    "Time to apply one event, transaction included.",
    ["service", "consumer"],
)


class MetricsServer:
    """The /metrics HTTP endpoint; port 0 disables it."""

    def __init__(self, port: int, *, address: str = "0.0.0.0") -> None:
        self._port = port
        self._address = address
        self._server: WSGIServer | None = None

    def start(self) -> None:
        if self._port:
            self._server, _thread = start_http_server(self._port, addr=self._address)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
