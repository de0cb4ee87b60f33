"""Outbound gRPC channels with client spans, so calls between services join one trace."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

DEFAULT_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
)


def insecure_channel(target: str, *, max_message_bytes: int = 4 * 1024 * 1024) -> grpc.aio.Channel:
    """A plaintext channel for in-cluster traffic (TLS terminates at the mesh/ingress)."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            *DEFAULT_OPTIONS,
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
        interceptors=aio_client_interceptors(),
    )
