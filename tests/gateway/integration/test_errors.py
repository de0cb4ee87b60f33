"""Statuses: the backend's pass through untouched; the gateway's own are precise."""

from __future__ import annotations

import grpc
import pytest

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc
from pipworks_devstack.testing import free_port
from pipworks_platform.grpc_errors import error_details
from tests.gateway.backend import BACKEND_TRAILER
from tests.gateway.conftest import ECHO, routes_to


async def failure(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


@pytest.mark.parametrize("kind", ["invalid", "not_found", "unavailable", "raw"])
async def test_backend_errors_reach_the_caller_unchanged(gateway, backend, kind):
    request = echo_pb2.FailRequest(kind=kind)
    async with grpc.aio.insecure_channel(backend.address) as direct:
        expected = await failure(echo_grpc.EchoServiceStub(direct).Fail(request, timeout=10))
    got = await failure(echo_grpc.EchoServiceStub(gateway.channel()).Fail(request, timeout=10))

    assert got.code() == expected.code()
    assert got.details() == expected.details()
    assert tuple(got.trailing_metadata()) == tuple(expected.trailing_metadata())
    assert error_details(got) == error_details(expected)
    if kind == "raw":
        assert BACKEND_TRAILER in tuple(got.trailing_metadata())
    else:
        assert error_details(got).domain == "pipworks.backend"  # not rewritten by the gateway


async def test_a_backend_that_is_down_is_unavailable_not_internal(
    start_gateway, backend, token_authority
):
    down = f"127.0.0.1:{free_port()}"
    gateway = await start_gateway(
        gateway_routes=f"{routes_to(backend.address)},pipworks.gatewaytest.v1.EchoService={down}"
    )
    stub = echo_grpc.EchoServiceStub(gateway.channel())

    for call in (
        stub.Inspect(echo_pb2.InspectRequest(), timeout=10),
        stub.Expand(
            echo_pb2.ExpandRequest(count=1), metadata=token_authority.metadata(), timeout=10
        ),
    ):
        error = await failure(call) if not hasattr(call, "read") else await _drain(call)
        details = error_details(error)
        assert details.code == grpc.StatusCode.UNAVAILABLE
        assert (details.reason, details.domain) == ("BACKEND_UNAVAILABLE", "pipworks.gateway")
        assert details.metadata == {"service": ECHO}
        assert down not in details.message  # internal addresses stay inside


async def _drain(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    return raised.value


@pytest.mark.parametrize(
    "method",
    [
        f"/{ECHO}/NoSuchMethod",
        "/pipworks.kyc.v1.KycService/GetServiceInfo",  # known, but not routed
        "/no.such.v1.Service/Call",
        "/grpc.health.v1.Health/NoSuchMethod",
    ],
)
async def test_unknown_and_unrouted_methods_are_unimplemented(gateway, token_authority, method):
    call = gateway.channel().unary_unary(method)(
        b"", metadata=token_authority.metadata(roles=("admin",), aal=2), timeout=10
    )
    assert (await failure(call)).code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_method_without_policy_is_refused_before_the_backend(
    gateway, backend, token_authority
):
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    admin = token_authority.metadata(roles=("admin",), aal=2)
    details = error_details(
        await failure(stub.Unexposed(echo_pb2.EchoRequest(), metadata=admin, timeout=10))
    )
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NO_METHOD_POLICY")
    assert details.domain == "pipworks.gateway"
    assert backend.echo.calls["Unexposed"] == 0


async def test_an_oversized_request_is_refused(start_gateway, backend, token_authority):
    gateway = await start_gateway(max_message_bytes=64 * 1024)
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    metadata = token_authority.metadata()

    too_big = echo_pb2.EchoRequest(payload=b"x" * (64 * 1024))
    error = await failure(stub.Echo(too_big, metadata=metadata, timeout=10))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert backend.echo.calls["Echo"] == 0

    fits = echo_pb2.EchoRequest(payload=b"x" * (16 * 1024))  # echoed twice in the reply
    assert (await stub.Echo(fits, metadata=metadata, timeout=10)).payload == fits.payload
