"""Outbound gRPC channels with client spans, so calls between services join one trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

DEFAULT_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
    # With a dns:/// target naming a headless Service, spread calls over every pod
    # instead of pinning one connection to one of them.
    ("grpc.lb_policy_name", "round_robin"),
)


def insecure_channel(
    target: str,
    *,
    max_message_bytes: int = 4 * 1024 * 1024,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A plaintext channel for in-cluster traffic (TLS terminates at the mesh/ingress)."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            *DEFAULT_OPTIONS,
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            *options,
        ],
        interceptors=aio_client_interceptors(),
    )
