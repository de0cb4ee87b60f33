"""Bytes that are not a valid request message are refused by the gateway, precisely.

A backend's gRPC runtime answers UNKNOWN ("Unexpected DecodeError") for a request it
cannot decode; the gateway decodes each request message first, so callers get
INVALID_ARGUMENT / MALFORMED_REQUEST and the backend never sees the bytes.
"""

from __future__ import annotations

import grpc
import pytest

from pipworks.gatewaytest.v1 import echo_service_pb2 as echo_pb2
from pipworks_platform.grpc_errors import error_details
from tests.gateway.conftest import ECHO

# Unknown field 99 as a group (start tag 0x9b 0x06, end tag 0x9c 0x06) nested 200 deep:
# past the protobuf decoder's recursion limit of 100.
DEEP_GROUPS = b"\x9b\x06" * 200 + b"\x9c\x06" * 200
MALFORMED = {
    "truncated-length": b"\x0a\x05ab",  # field 1, length 5, two bytes follow
    "bad-varint": b"\x08" + b"\xff" * 11,  # a varint longer than ten bytes
    "wire-type-7": b"\x0f",
    "end-group-without-start": b"\x0c",
    "deep-groups": DEEP_GROUPS,
}


def assert_malformed(error: grpc.RpcError, request_type: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    details = error_details(error)
    assert (details.reason, details.domain) == ("MALFORMED_REQUEST", "pipworks.gateway")
    assert request_type in details.message


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
async def test_an_undecodable_unary_request_is_invalid_argument_and_not_forwarded(
    gateway, backend, token_authority, payload
):
    call = gateway.channel().unary_unary(f"/{ECHO}/Echo")(
        payload, metadata=token_authority.metadata(), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert_malformed(raised.value, "pipworks.gatewaytest.v1.EchoRequest")
    assert backend.echo.calls["Echo"] == 0


async def test_an_undecodable_server_streaming_request_is_invalid_argument(
    gateway, backend, token_authority
):
    call = gateway.channel().unary_stream(f"/{ECHO}/Expand")(
        b"\x10" + b"\xff" * 11, metadata=token_authority.metadata(), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert_malformed(raised.value, "pipworks.gatewaytest.v1.ExpandRequest")
    assert backend.echo.calls["Expand"] == 0


@pytest.mark.parametrize("method", ["Collect", "Chat"])
async def test_a_malformed_message_in_a_request_stream_ends_the_call_invalid_argument(
    gateway, token_authority, method
):
    good = echo_pb2.EchoRequest(payload=b"fine").SerializeToString()
    open_call = (
        gateway.channel().stream_unary if method == "Collect" else gateway.channel().stream_stream
    )
    call = open_call(f"/{ECHO}/{method}")(metadata=token_authority.metadata(), timeout=10)
    await call.write(good)
    await call.write(DEEP_GROUPS)
    await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        if method == "Collect":
            await call
        else:
            async for _ in call:
                pass
    assert_malformed(raised.value, "pipworks.gatewaytest.v1.EchoRequest")


async def test_a_valid_request_with_unknown_fields_still_passes(gateway, token_authority):
    # Field 15 varint and a shallow unknown group: well-formed, forwarded as sent.
    payload = (
        echo_pb2.EchoRequest(payload=b"x").SerializeToString() + b"\x78\x2a" + b"\x9b\x06\x9c\x06"
    )
    reply = await gateway.channel().unary_unary(f"/{ECHO}/Echo")(
        payload, metadata=token_authority.metadata(), timeout=10
    )
    assert echo_pb2.EchoResponse.FromString(reply).request == payload


async def test_an_unauthenticated_malformed_request_is_unauthenticated_first(gateway):
    call = gateway.channel().unary_unary(f"/{ECHO}/Echo")(b"\x0f", timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
