"""The gateway authenticates and authorises every call by the proxied method's policy."""

from __future__ import annotations

import grpc
import pytest

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc
from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from pipworks_platform.grpc_errors import error_details
from tests.tokens import TokenAuthority


async def refused(call) -> tuple[grpc.StatusCode, str | None, str | None]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    details = error_details(raised.value)
    return details.code, details.reason, details.domain


async def test_calls_without_a_valid_token_stop_at_the_gateway(gateway, backend, token_authority):
    echo = echo_grpc.EchoServiceStub(gateway.channel()).Echo
    request = echo_pb2.EchoRequest(payload=b"x")
    forger = TokenAuthority(kid=token_authority.kid)  # same key id, different key
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED

    assert await refused(echo(request, timeout=10)) == (
        unauthenticated,
        "TOKEN_MISSING",
        "pipworks.gateway",
    )
    for metadata, reason in [
        (forger.metadata(), "TOKEN_INVALID"),
        (token_authority.metadata(ttl=-120), "TOKEN_EXPIRED"),
        (token_authority.metadata(aud="someone-else"), "TOKEN_INVALID"),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "TOKEN_MISSING"),
    ]:
        assert await refused(echo(request, metadata=metadata, timeout=10)) == (
            unauthenticated,
            reason,
            "pipworks.gateway",
        )
    assert backend.echo.calls["Echo"] == 0

    reply = await echo(request, metadata=token_authority.metadata(), timeout=10)
    assert reply.payload == b"x"


async def test_public_methods_pass_without_a_token(gateway, backend):
    identity = identity_service_pb2_grpc.IdentityServiceStub(gateway.channel())
    jwks = await identity.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=10)
    assert [key.kty for key in jwks.keys] == ["OKP"]
    login = await identity.Login(
        identity_service_pb2.LoginRequest(email="a@example.com", password="secret"), timeout=10
    )
    assert login.mfa_challenge_token == "challenge"
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    assert (await stub.Inspect(echo_pb2.InspectRequest(), timeout=10)).metadata


async def test_roles_and_two_factor_are_enforced_by_policy(gateway, token_authority):
    info = ib_service_pb2_grpc.IbServiceStub(gateway.channel()).GetServiceInfo
    request = ib_service_pb2.GetServiceInfoRequest()
    denied = grpc.StatusCode.PERMISSION_DENIED

    client = token_authority.metadata(roles=("client",), aal=2)
    assert await refused(info(request, metadata=client, timeout=10)) == (
        denied,
        "MISSING_ROLE",
        "pipworks.gateway",
    )
    support_aal1 = token_authority.metadata(roles=("support",), aal=1)
    assert await refused(info(request, metadata=support_aal1, timeout=10)) == (
        denied,
        "AAL2_REQUIRED",
        "pipworks.gateway",
    )
    # Allowed at the gateway, and again by the backend, which verifies the same token.
    support = token_authority.metadata(roles=("support",), aal=2)
    reply = await info(request, metadata=support, timeout=10)
    assert reply.info.name == "ib-behind-the-gateway"
