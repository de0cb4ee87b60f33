"""Requests whose bytes are not a valid message: INVALID_ARGUMENT, never UNKNOWN.

gRPC's own handling of a request it cannot deserialize is to end the call with UNKNOWN.
The gateway checks every request message before forwarding it; backends, which a
caller inside the cluster may reach directly, decode through :func:`tolerant` so the
handler wrapper can refuse the call with the same precise status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from pipworks_platform.errors import InvalidArgument

__all__ = [
    "MalformedRequest",
    "checked_stream",
    "malformed_request",
    "reject_malformed",
    "tolerant",
]

REASON = "MALFORMED_REQUEST"


def malformed_request(type_name: str) -> InvalidArgument:
    return InvalidArgument(f"the request is not a valid {type_name} message", reason=REASON)


class MalformedRequest:
    """What :func:`tolerant` hands the handler in place of a message it could not decode."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer`` that returns :class:`MalformedRequest` instead of raising."""
    owner = getattr(deserializer, "__self__", None)  # Message.FromString is bound to the class
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return MalformedRequest(type_name)

    return deserialize


def reject_malformed(request: Any) -> Any:
    """``request`` itself, or InvalidArgument when it could not be decoded."""
    if isinstance(request, MalformedRequest):
        raise malformed_request(request.type_name)
    return request


async def checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream that raises InvalidArgument at its first undecodable message."""
    async for request in requests:
        yield reject_malformed(request)
