"""Calls of every streaming shape cross the gateway byte for byte, headers and trailers too."""

from __future__ import annotations

import asyncio
import os

import grpc

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc
from tests.gateway.backend import BACKEND_HEADER, BACKEND_TRAILER
from tests.gateway.conftest import ECHO
from tests.helpers import eventually

# Field 15, varint 42: unknown to EchoRequest, so only a byte-faithful hop keeps it.
UNKNOWN_FIELD = b"\x78\x2a"


async def test_unary_call_is_forwarded_byte_exact_with_headers_and_trailers(
    gateway, token_authority
):
    payload = os.urandom(256 * 1024)
    request = echo_pb2.EchoRequest(payload=payload).SerializeToString() + UNKNOWN_FIELD
    echo = gateway.channel().unary_unary(f"/{ECHO}/Echo")

    call = echo(request, metadata=token_authority.metadata(), timeout=10)
    response = await call

    assert response == echo_pb2.EchoResponse(payload=payload, request=request).SerializeToString()
    headers = dict(await call.initial_metadata())
    assert headers[BACKEND_HEADER[0]] == BACKEND_HEADER[1]
    assert headers["x-request-id"]
    assert (BACKEND_TRAILER) in tuple(await call.trailing_metadata())


async def test_server_streaming_is_forwarded_message_by_message(gateway, token_authority):
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    call = stub.Expand(
        echo_pb2.ExpandRequest(payload=b"tick", count=5),
        metadata=token_authority.metadata(),
        timeout=10,
    )
    replies = [reply async for reply in call]
    assert [(r.payload, r.sequence) for r in replies] == [(b"tick", i) for i in range(5)]
    assert (await call.initial_metadata())["x-request-id"]
    assert await call.code() == grpc.StatusCode.OK


async def test_client_streaming_is_forwarded_until_the_caller_half_closes(gateway, token_authority):
    chunks = [os.urandom(1000) for _ in range(20)]

    async def requests():
        for chunk in chunks:
            yield echo_pb2.EchoRequest(payload=chunk)

    stub = echo_grpc.EchoServiceStub(gateway.channel())
    reply = await stub.Collect(requests(), metadata=token_authority.metadata(), timeout=10)
    assert reply.payload == b"".join(chunks)
    assert reply.sequence == len(chunks)


async def test_bidirectional_streaming_answers_each_message_as_it_arrives(gateway, token_authority):
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    call = stub.Chat(metadata=token_authority.metadata(), timeout=10)
    for sequence in range(3):
        # The reply arrives before the next request is sent: nothing is buffered.
        await call.write(echo_pb2.EchoRequest(payload=f"m{sequence}".encode()))
        reply = await call.read()
        assert (reply.payload, reply.sequence) == (f"m{sequence}".encode(), sequence)
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_a_caller_that_goes_away_cancels_the_backend_call(gateway, backend, token_authority):
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    call = stub.Expand(
        echo_pb2.ExpandRequest(payload=b"x", count=1000, interval_seconds=0.05),
        metadata=token_authority.metadata(),
        timeout=30,
    )
    assert (await call.read()).sequence == 0
    call.cancel()
    await asyncio.wait_for(backend.echo.cancelled.wait(), timeout=5)


async def test_concurrent_calls_keep_their_own_request_ids(gateway):
    inspect = echo_grpc.EchoServiceStub(gateway.channel()).Inspect

    async def seen_request_id(sent: str) -> tuple[str, str]:
        call = inspect(echo_pb2.InspectRequest(), metadata=[("x-request-id", sent)], timeout=10)
        reply = await call
        backend_saw = {h.key: h.value for h in reply.metadata}["x-request-id"]
        return (await call.initial_metadata())["x-request-id"], backend_saw

    sent = [f"req-{i}" for i in range(50)]
    results = await asyncio.gather(*(seen_request_id(s) for s in sent))
    assert results == [(s, s) for s in sent]


async def test_reflection_lists_the_proxied_services(gateway):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(gateway.channel())

    async def ask(**request):
        call = stub.ServerReflectionInfo(timeout=10)
        await call.write(reflection_pb2.ServerReflectionRequest(**request))
        await call.done_writing()
        return await call.read()

    listed = {s.name for s in (await ask(list_services="")).list_services_response.service}
    assert {ECHO, "pipworks.identity.v1.IdentityService", "pipworks.ib.v1.IbService"} <= listed
    assert "pipworks.kyc.v1.KycService" not in listed  # not routed
    described = await ask(file_containing_symbol=ECHO)
    assert described.file_descriptor_response.file_descriptor_proto


async def test_gateway_health_is_its_own(gateway):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(gateway.channel())
    reply = await eventually(
        lambda: health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5),
        until=lambda r: r.status == health_pb2.HealthCheckResponse.SERVING,
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
