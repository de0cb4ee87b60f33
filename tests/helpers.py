"""Small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.streams import ensure_stream, service_stream

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``until(result)`` holds; fail with the last result on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {result!r}")
        await asyncio.sleep(interval)


def health_status(port: int, service: str = "", *, timeout: float = 1.0) -> str:
    """The grpc.health.v1 status name (SERVING, NOT_SERVING, …) of ``service`` on ``port``."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def wait_serving(
    proc: subprocess.Popen[bytes],
    port: int,
    *,
    timeout: float = 60.0,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Block until the process on ``port`` reports SERVING; fail fast if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}: {describe()}")
        try:
            if health_status(port) == "SERVING":
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not SERVING on port {port} within {timeout}s: {describe()}")


async def publish(js: Any, message: Message, event_id: str) -> None:
    """Publish an event the way a producer's outbox relay does (its stream created first)."""
    subject = subject_of(message)
    await ensure_stream(js, service_stream(subject.split(".")[1]))
    headers = nats_headers(
        event_id=event_id,
        event_type=message.DESCRIPTOR.full_name,
        occurred_at=datetime.now(UTC),
        extra={},
    )
    await js.publish(subject, message.SerializeToString(), headers=headers)
