"""Waiting for a gRPC server to report SERVING on the standard health service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

POLL_INTERVAL = 0.2


async def wait_serving(target: str, within: float, *, alive: Callable[[], bool]) -> str | None:
    """Poll ``Check`` (whole server) on ``target`` until SERVING.

    Returns None once SERVING, or why it never got there: ``"exited"`` when ``alive()``
    turned false first, otherwise a timeout description with the last health answer.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last_status = "no answer yet"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if not alive():
                return "exited"
            remaining = deadline - loop.time()
            if remaining <= 0:
                return (
                    f"did not become SERVING on {target} within {within:.0f}s "
                    f"(last health check: {last_status})"
                )
            try:
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=min(1.0, remaining)
                )
            except grpc.aio.AioRpcError as exc:
                last_status = f"{exc.code().name}: {exc.details()}"
            else:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return None
                last_status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            await asyncio.sleep(min(POLL_INTERVAL, max(remaining, 0)))
