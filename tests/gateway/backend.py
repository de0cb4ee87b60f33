"""Backends the gateway tests route to: real generated servicers on the platform GrpcServer.

One server hosts the test EchoService (every streaming shape, metadata and deadline
inspection, failures on demand) and small IdentityService (GetJwks, Login) and IbService
(GetServiceInfo) servicers; it verifies tokens again, as every Pipworks backend does.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc
from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from pipworks_platform.auth import AuthInterceptor, JwksCache, TokenVerifier
from pipworks_platform.errors import InvalidArgument, NotFound, Unavailable
from pipworks_platform.server import ApiService, GrpcServer
from tests.tokens import AUDIENCE, ISSUER, TokenAuthority

BACKEND_HEADER = ("x-backend-header", "h1")
BACKEND_TRAILER = ("x-backend-trailer", "t1")


class EchoApi(echo_grpc.EchoServiceServicer):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.cancelled = asyncio.Event()

    async def Echo(self, request, context):
        self.calls["Echo"] += 1
        await context.send_initial_metadata([BACKEND_HEADER])
        context.set_trailing_metadata([BACKEND_TRAILER])
        return echo_pb2.EchoResponse(payload=request.payload, request=request.SerializeToString())

    async def Expand(self, request, context):
        self.calls["Expand"] += 1
        try:
            for sequence in range(request.count):
                if sequence and request.interval_seconds:
                    await asyncio.sleep(request.interval_seconds)
                yield echo_pb2.EchoResponse(payload=request.payload, sequence=sequence)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def Collect(self, request_iterator, context):
        self.calls["Collect"] += 1
        chunks = [request.payload async for request in request_iterator]
        return echo_pb2.EchoResponse(payload=b"".join(chunks), sequence=len(chunks))

    async def Chat(self, request_iterator, context):
        self.calls["Chat"] += 1
        sequence = 0
        async for request in request_iterator:
            yield echo_pb2.EchoResponse(payload=request.payload, sequence=sequence)
            sequence += 1

    async def Inspect(self, request, context):
        self.calls["Inspect"] += 1
        remaining = context.time_remaining()
        return echo_pb2.InspectResponse(
            metadata=[
                echo_pb2.Header(key=key, value=value)
                for key, value in context.invocation_metadata()
                if isinstance(value, str)
            ],
            time_remaining=-1.0 if remaining is None else remaining,
        )

    async def Fail(self, request, context):
        self.calls["Fail"] += 1
        context.set_trailing_metadata([BACKEND_TRAILER])
        if request.kind == "invalid":
            raise InvalidArgument.for_field("kind", "must be a known kind")
        if request.kind == "not_found":
            raise NotFound("note", "n-1")
        if request.kind == "unavailable":
            raise Unavailable("ledger is catching up", reason="LEDGER_CATCHING_UP")
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION, "raw failure", (BACKEND_TRAILER, ("x-why", "raw"))
        )

    async def Unexposed(self, request, context):
        self.calls["Unexposed"] += 1
        return echo_pb2.EchoResponse()


class IdentityApi(identity_service_pb2_grpc.IdentityServiceServicer):
    """Publishes the test authority's keys, as identity does; Login is a stand-in."""

    def __init__(self, authority: TokenAuthority) -> None:
        self._authority = authority
        self.jwks_requests = 0

    async def GetJwks(self, request, context):
        self.jwks_requests += 1
        return identity_service_pb2.GetJwksResponse(
            keys=[identity_service_pb2.Jwk(**jwk) for jwk in self._authority.jwks()]
        )

    async def Login(self, request, context):
        return identity_service_pb2.LoginResponse(mfa_challenge_token="challenge")


class IbApi(ib_service_pb2_grpc.IbServiceServicer):
    async def GetServiceInfo(self, request, context):
        response = ib_service_pb2.GetServiceInfoResponse()
        response.info.name = "ib-behind-the-gateway"
        return response


class Backend:
    def __init__(self, authority: TokenAuthority) -> None:
        self.echo = EchoApi()
        self.identity = IdentityApi(authority)

        async def keys():
            return authority.jwks()

        self.server = GrpcServer(
            service="backend",
            address="127.0.0.1:0",
            api_services=[
                ApiService.of(echo_pb2, echo_grpc, "EchoService", self.echo),
                ApiService.of(
                    identity_service_pb2,
                    identity_service_pb2_grpc,
                    "IdentityService",
                    self.identity,
                ),
                ApiService.of(ib_service_pb2, ib_service_pb2_grpc, "IbService", IbApi()),
            ],
            auth=AuthInterceptor(TokenVerifier(JwksCache(keys), issuer=ISSUER, audience=AUDIENCE)),
        )
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> Backend:
        self.port = await self.server.start()
        await self.server.set_ready(True)
        return self

    async def stop(self) -> None:
        await self.server.stop(0)
