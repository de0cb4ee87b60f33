"""What the backend learns about a call: the caller's metadata, deadline, trace and address."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from opentelemetry.trace import SpanKind

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks.gatewaytest.v1 import echo_service_pb2_grpc as echo_grpc

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"


async def inspect(gateway, *, metadata=(), timeout=None, **channel_options):
    stub = echo_grpc.EchoServiceStub(gateway.channel(**channel_options))
    call = stub.Inspect(echo_pb2.InspectRequest(), metadata=metadata, timeout=timeout)
    reply = await call
    seen: dict[str, list[str]] = {}
    for header in reply.metadata:
        seen.setdefault(header.key, []).append(header.value)
    return seen, reply.time_remaining, dict(await call.initial_metadata())


async def test_backend_sees_the_callers_metadata_and_the_real_peer(gateway):
    seen, _, returned = await inspect(
        gateway,
        metadata=[
            ("x-tenant", "broker-1"),
            ("authorization", "Bearer opaque"),
            ("x-request-id", "req-7f3a"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-user-agent", "forged/1.0"),
            ("traceparent", TRACEPARENT),
        ],
        **{"grpc.primary_user_agent": "pipworks-portal/2.1"},
    )
    assert seen["x-tenant"] == ["broker-1"]
    assert seen["authorization"] == ["Bearer opaque"]
    assert seen["x-request-id"] == ["req-7f3a"]
    assert returned["x-request-id"] == "req-7f3a"
    # The gateway alone says who the caller is: the connection's address, once.
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert "x-real-ip" not in seen
    assert "forwarded" not in seen
    assert len(seen["x-forwarded-user-agent"]) == 1
    assert seen["x-forwarded-user-agent"][0].startswith("pipworks-portal/2.1 ")
    # One traceparent, re-injected by the gateway's client span, in the caller's trace.
    assert len(seen["traceparent"]) == 1
    assert seen["traceparent"][0].split("-")[1] == TRACE_ID


async def test_one_trace_runs_from_the_caller_through_the_gateway_to_the_backend(
    gateway, span_exporter
):
    span_exporter.clear()
    seen, _, _ = await inspect(gateway, metadata=[("traceparent", TRACEPARENT)])
    (backend_traceparent,) = seen["traceparent"]

    by_parent = {s.parent.span_id: s for s in span_exporter.get_finished_spans() if s.parent}
    gateway_server = by_parent[int(CALLER_SPAN_ID, 16)]
    gateway_client = by_parent[gateway_server.context.span_id]
    backend_server = by_parent[gateway_client.context.span_id]
    assert (gateway_server.kind, gateway_client.kind, backend_server.kind) == (
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.SERVER,
    )
    assert {s.context.trace_id for s in (gateway_server, gateway_client, backend_server)} == {
        int(TRACE_ID, 16)
    }
    assert backend_traceparent == f"00-{TRACE_ID}-{gateway_client.context.span_id:016x}-01"


async def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(gateway):
    for metadata in ((), (("x-request-id", "not a token; drop table"),)):
        seen, _, returned = await inspect(gateway, metadata=metadata)
        assert seen["x-request-id"] == [returned["x-request-id"]]
        assert uuid.UUID(returned["x-request-id"]).version == 4


async def test_the_callers_deadline_travels_to_the_backend(gateway):
    _, remaining, _ = await inspect(gateway, timeout=5)
    # gRPC rounds a timeout up as it encodes it (grpc-timeout): a fraction of a percent here.
    assert 4.5 < remaining <= 5 * 1.01
    _, remaining, _ = await inspect(gateway)
    assert remaining == -1.0  # no deadline in, none out


async def test_the_backend_call_ends_when_the_callers_deadline_passes(
    gateway, backend, token_authority
):
    stub = echo_grpc.EchoServiceStub(gateway.channel())
    call = stub.Expand(
        echo_pb2.ExpandRequest(count=1000, interval_seconds=0.05),
        metadata=token_authority.metadata(),
        timeout=0.5,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(backend.echo.cancelled.wait(), timeout=2)
