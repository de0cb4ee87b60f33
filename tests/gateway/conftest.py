"""Fixtures for the gateway tests: the test proto, a real backend and gateways in-process.

A gateway here is wired exactly as the platform runtime wires it (``GrpcServer`` with the
auth interceptor, the gateway's interceptors, generic handlers and reflection names), on
real sockets, minus NATS and the process around it (``test_process.py`` covers those).
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.protos import compile_protos, ensure_importable
from tests.tokens import TokenAuthority

PROTO_ROOT = Path(__file__).parent / "protos"
ECHO_PROTO = Path("pipworks/gatewaytest/v1/echo_service.proto")


def _compile_test_protos() -> None:
    out = Path(tempfile.mkdtemp(prefix="pipworks-gateway-test-protos-"))
    atexit.register(shutil.rmtree, out, True)
    ensure_importable(compile_protos(PROTO_ROOT, ECHO_PROTO, out))


_compile_test_protos()

from pipworks_gateway.main import DEFINITION  # noqa: E402
from pipworks_gateway.settings import GatewaySettings  # noqa: E402
from pipworks_platform.runtime import ServiceProcess  # noqa: E402
from tests.gateway.backend import Backend  # noqa: E402
from tests.helpers import eventually, health_status  # noqa: E402

ECHO = "pipworks.gatewaytest.v1.EchoService"


def routes_to(address: str) -> str:
    return (
        f"pipworks.gatewaytest.v1={address},"
        f"pipworks.identity.v1.IdentityService={address},"
        f"pipworks.ib.v1.IbService={address}"
    )


@dataclass
class RunningGateway:
    """The gateway running in-process on the platform runtime, as ``python -m`` runs it."""

    process: ServiceProcess
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.process.port is not None
        return self.process.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, **options: Any) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.address, options=list(options.items()))
        self._channels.append(channel)
        return channel

    async def stop(self) -> None:
        for channel in self._channels:
            await channel.close()
        self.process.request_stop()
        await self.process.stop()


async def serve(settings: GatewaySettings) -> RunningGateway:
    """Start the gateway's own ServiceDefinition on the runtime; return once SERVING."""
    process = ServiceProcess(DEFINITION, settings)
    assert await process.start()
    running = RunningGateway(process)
    await eventually(lambda: asyncio.to_thread(health_status, running.port), until="SERVING".__eq__)
    return running


@pytest.fixture
async def backend(token_authority: TokenAuthority) -> AsyncIterator[Backend]:
    running = await Backend(token_authority).start()
    yield running
    await running.stop()


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(backend: Backend) -> AsyncIterator[StartGateway]:
    """``await start_gateway(gateway_rate_limits="auth.ip=1/2", ...)``: settings as keywords."""
    started: list[RunningGateway] = []

    async def start(**settings: Any) -> RunningGateway:
        values = {
            "gateway_routes": routes_to(backend.address),
            "grpc_address": "127.0.0.1:0",
            "metrics_port": 0,
            **settings,
        }
        running = await serve(GatewaySettings(**values))
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> RunningGateway:
    """A gateway with the default settings in front of ``backend``."""
    return await start_gateway()
