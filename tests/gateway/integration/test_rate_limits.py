"""Rate limits over real calls: per address for everyone, per subject once authenticated."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc
from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from pipworks_platform.grpc_errors import ErrorDetails, error_details
from tests.helpers import health_status

# Slow refill, so a test's burst is not topped up while it runs.
SLOW = 0.2


async def throttled(call) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED"
    return details


async def test_auth_class_is_limited_per_address_with_retry_info(start_gateway):
    gateway = await start_gateway(gateway_rate_limits=f"auth.ip={SLOW}/3")
    login = identity_service_pb2_grpc.IdentityServiceStub(gateway.channel()).Login
    request = identity_service_pb2.LoginRequest(email="a@example.com", password="guess")

    for _ in range(3):
        await login(request, timeout=10)
    details = await throttled(login(request, timeout=10))

    assert details.metadata == {"rate_limit_class": "auth", "scope": "ip"}
    assert timedelta(0) < details.retry_after <= timedelta(seconds=1 / SLOW)
    # Other classes keep their own budget.
    inspect = echo_grpc.EchoServiceStub(gateway.channel()).Inspect
    await inspect(echo_pb2.InspectRequest(), timeout=10)


async def test_authenticated_calls_are_limited_per_subject(start_gateway, token_authority):
    gateway = await start_gateway(gateway_rate_limits=f"default.subject={SLOW}/2,default.ip=off")
    echo = echo_grpc.EchoServiceStub(gateway.channel()).Echo
    request = echo_pb2.EchoRequest()
    alice = token_authority.metadata(subject="alice")

    for _ in range(2):
        await echo(request, metadata=alice, timeout=10)
    details = await throttled(echo(request, metadata=alice, timeout=10))
    assert details.metadata == {"rate_limit_class": "default", "scope": "subject"}
    assert details.retry_after > timedelta(0)

    # Bob, from the same address, has his own budget; a new token for Alice does not.
    await echo(request, metadata=token_authority.metadata(subject="bob"), timeout=10)
    await throttled(echo(request, metadata=token_authority.metadata(subject="alice"), timeout=10))


async def test_public_calls_are_limited_per_address_only(start_gateway, token_authority):
    gateway = await start_gateway(gateway_rate_limits=f"default.ip={SLOW}/2")
    stub = echo_grpc.EchoServiceStub(gateway.channel())

    for _ in range(2):
        await stub.Inspect(echo_pb2.InspectRequest(), timeout=10)
    details = await throttled(stub.Inspect(echo_pb2.InspectRequest(), timeout=10))
    assert details.metadata == {"rate_limit_class": "default", "scope": "ip"}
    # The address is spent for authenticated callers too ...
    await throttled(
        stub.Echo(echo_pb2.EchoRequest(), metadata=token_authority.metadata(), timeout=10)
    )
    # ... but health probes are never refused.
    assert await asyncio.to_thread(health_status, gateway.port) == "SERVING"


async def test_refused_streaming_calls_never_reach_the_backend(
    start_gateway, backend, token_authority
):
    gateway = await start_gateway(gateway_rate_limits=f"default.subject={SLOW}/1")
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    metadata = token_authority.metadata()

    replies = stub.Expand(echo_pb2.ExpandRequest(count=2), metadata=metadata, timeout=10)
    assert len([r async for r in replies]) == 2
    call = stub.Expand(echo_pb2.ExpandRequest(count=2), metadata=metadata, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert backend.echo.calls["Expand"] == 1
