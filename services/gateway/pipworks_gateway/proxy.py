"""The proxy: forwards each call, as raw bytes, to the backend its service is routed to.

Handlers and backend calls carry ``bytes`` (no serializers), so a request reaches the
backend exactly as the caller encoded it, unknown fields and all. Each request message
is decoded once, only to check it is well-formed: bytes that are not a valid message of
the method's request type (garbage, truncated, nested past the decoder's limit) are
refused with INVALID_ARGUMENT / MALFORMED_REQUEST before they cost a backend call
(backends refuse them the same way, see ``pipworks_platform.malformed``). The caller's
deadline, metadata and trace continue to the backend; the backend's headers, status,
message and trailing metadata (``grpc-status-details-bin`` included) come back
unchanged. The one status the gateway makes up is for a backend it cannot reach:
UNAVAILABLE with reason BACKEND_UNAVAILABLE, rather than the channel's text, which names
internal addresses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, NoReturn

import grpc
import structlog
from google.protobuf.message import DecodeError
from opentelemetry import propagate

from pipworks_gateway.catalogue import Catalogue, MethodShape
from pipworks_gateway.metadata import outbound_metadata, request_id, response_headers
from pipworks_gateway.metrics import BACKEND_UNAVAILABLE
from pipworks_gateway.routing import RouteTable
from pipworks_platform.errors import InvalidArgument, Unavailable
from pipworks_platform.grpc_client import insecure_channel
from pipworks_platform.malformed import malformed_request
from pipworks_platform.peer import peer_ip

log = structlog.get_logger(__name__)

_STATUS_DETAILS = "grpc-status-details-bin"

AsyncBytes = AsyncIterator[bytes]


class Backends:
    """One long-lived channel per backend target, shared by every route to it."""

    def __init__(self, targets: Iterable[str], *, max_message_bytes: int) -> None:
        self._channels = {
            target: insecure_channel(target, max_message_bytes=max_message_bytes)
            for target in targets
        }

    @property
    def targets(self) -> list[str]:
        return list(self._channels)

    def channel(self, target: str) -> grpc.aio.Channel:
        return self._channels[target]

    async def close(self, grace: float | None = None) -> None:
        for channel in self._channels.values():
            await channel.close(grace)


class GatewayProxy(grpc.GenericRpcHandler):
    """Serves every method of every routed service; anything else is UNIMPLEMENTED."""

    def __init__(self, catalogue: Catalogue, routes: RouteTable, backends: Backends) -> None:
        # Trace headers are re-injected by the backend channel's tracing interceptor.
        drop = frozenset(propagate.get_global_textmap().fields)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.services: list[str] = []
        for service in catalogue.service_names:
            target = routes.target_for(service)
            if target is None:
                continue
            self.services.append(service)
            for shape in catalogue.methods(service):
                forwarder = _Forwarder(shape, backends.channel(target), target, drop)
                self._handlers[shape.path] = forwarder.handler

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)  # None → UNIMPLEMENTED


class _Forwarder:
    """Forwards calls of one method: the backend call and the ``handler`` of its shape."""

    def __init__(
        self,
        shape: MethodShape,
        channel: grpc.aio.Channel,
        backend: str,
        drop: frozenset[str],
    ) -> None:
        self._shape = shape
        self._backend = backend
        self._drop = drop
        path = shape.path
        self.handler: grpc.RpcMethodHandler
        if shape.client_streaming and shape.server_streaming:
            self._start = channel.stream_stream(path)
            self.handler = grpc.stream_stream_rpc_method_handler(self._streamed_response)
        elif shape.client_streaming:
            self._start = channel.stream_unary(path)
            self.handler = grpc.stream_unary_rpc_method_handler(self._single_response)
        elif shape.server_streaming:
            self._start = channel.unary_stream(path)
            self.handler = grpc.unary_stream_rpc_method_handler(self._streamed_response)
        else:
            self._start = channel.unary_unary(path)
            self.handler = grpc.unary_unary_rpc_method_handler(self._single_response)

    async def _single_response(
        self, request: bytes | AsyncBytes, context: grpc.aio.ServicerContext
    ) -> bytes:
        call, rid, checked = self._call(request, context)
        try:
            await self._relay_headers(call, context, rid)
            response: bytes = await call
        except grpc.aio.AioRpcError as error:
            checked.raise_if_malformed()
            await self._relay_failure(error, context)
        except asyncio.CancelledError:
            checked.raise_if_malformed()  # the stream was cut short by a malformed message
            raise
        finally:
            call.cancel()  # no-op once finished; stops the backend call if the caller left
        context.set_trailing_metadata(tuple(await call.trailing_metadata()))
        return response

    async def _streamed_response(
        self, request: bytes | AsyncBytes, context: grpc.aio.ServicerContext
    ) -> AsyncBytes:
        call, rid, checked = self._call(request, context)
        try:
            await self._relay_headers(call, context, rid)
            async for response in call:
                yield response
            context.set_trailing_metadata(tuple(await call.trailing_metadata()))
        except grpc.aio.AioRpcError as error:
            checked.raise_if_malformed()
            await self._relay_failure(error, context)
        except asyncio.CancelledError:
            checked.raise_if_malformed()
            raise
        finally:
            call.cancel()

    def _call(
        self, request: bytes | AsyncBytes, context: grpc.aio.ServicerContext
    ) -> tuple[Any, str, _CheckedRequests]:
        """Start the backend call; returns it, the call's request id and the request check.

        A single request is checked before the call starts; a request stream message by
        message as the backend call consumes it (a malformed one ends the call).
        """
        checked = _CheckedRequests(self._shape)
        if isinstance(request, bytes):
            checked.check(request)
            checked.raise_if_malformed()
        else:
            request = checked.stream(request)
        incoming = tuple(context.invocation_metadata() or ())
        rid = request_id(incoming)
        # Bound for the rest of this call's task, so the access log line carries it too.
        structlog.contextvars.bind_contextvars(request_id=rid)
        metadata = outbound_metadata(
            incoming, request_id=rid, client_ip=peer_ip(context.peer()), also_drop=self._drop
        )
        call = self._start(request, timeout=context.time_remaining(), metadata=metadata)
        return call, rid, checked

    async def _relay_headers(self, call: Any, context: grpc.aio.ServicerContext, rid: str) -> None:
        headers = await call.initial_metadata()
        await context.send_initial_metadata(response_headers(headers or (), request_id=rid))

    async def _relay_failure(
        self, error: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext
    ) -> NoReturn:
        trailing = tuple(error.trailing_metadata() or ())
        if error.code() == grpc.StatusCode.UNAVAILABLE and not _has_details(trailing):
            # The channel's own status: no backend answered this call.
            BACKEND_UNAVAILABLE.labels(self._backend).inc()
            log.warning(
                "backend unavailable",
                backend=self._backend,
                method=self._shape.path,
                error=error.details(),
            )
            raise Unavailable(
                "the service is temporarily unavailable; retry with backoff",
                reason="BACKEND_UNAVAILABLE",
                metadata={"service": self._shape.service},
            ) from None
        await context.abort(error.code(), error.details() or "", trailing)
        raise AssertionError("grpc.aio.ServicerContext.abort() returned")  # pragma: no cover


class _CheckedRequests:
    """Checks that request messages decode as the method's request type."""

    def __init__(self, shape: MethodShape) -> None:
        self._shape = shape
        self.error: InvalidArgument | None = None

    def check(self, message: bytes) -> bool:
        try:
            self._shape.request_type.FromString(message)
        except DecodeError:
            self.error = malformed_request(self._shape.request_type.DESCRIPTOR.full_name)
            return False
        return True

    async def stream(self, requests: AsyncBytes) -> AsyncBytes:
        async for message in requests:
            if not self.check(message):
                raise self.error  # type: ignore[misc]  # grpc.aio then cancels the call
            yield message

    def raise_if_malformed(self) -> None:
        if self.error is not None:
            raise self.error


def _has_details(metadata: Iterable[tuple[str, Any]]) -> bool:
    return any(key == _STATUS_DETAILS for key, _ in metadata)
