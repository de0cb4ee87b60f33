"""gRPC server interceptor: access log, latency metric and error mapping in one place.

Domain errors (:mod:`pipworks_platform.errors`) become their gRPC status with
``google.rpc`` details; anything unexpected becomes INTERNAL with a generic message
and one log line carrying the traceback, so no stack trace ever reaches a caller.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from pipworks_platform.db.errors import is_transient_db_error
from pipworks_platform.errors import PipworksError, Unavailable
from pipworks_platform.grpc_errors import abort_with_error, internal_status
from pipworks_platform.malformed import checked_stream, reject_malformed, tolerant
from pipworks_platform.metrics import RPC_LATENCY

log = structlog.get_logger("pipworks.rpc")

_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, *, service: str) -> None:
        self._service = service
        self._domain = f"pipworks.{service}"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if method.startswith(_QUIET_PREFIXES):
            return handler
        return wrap_handler(handler, _Observed(self._service, self._domain, method))


class _Observed:
    """Runs one call's behaviour with logging, metrics and error mapping."""

    def __init__(self, service: str, domain: str, method: str) -> None:
        self.service = service
        self.domain = domain
        self.method = method

    async def unary(self, behavior: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            await self._fail(exc, context, started)
            raise
        self._done(context, started)
        return response

    async def streaming(
        self, behavior: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as exc:
            await self._fail(exc, context, started)
            raise
        self._done(context, started)

    def _done(self, context: grpc.aio.ServicerContext, started: float) -> None:
        code = _code_name(context.code()) or "OK"
        self._record(code, started)

    async def _fail(
        self, exc: BaseException, context: grpc.aio.ServicerContext, started: float
    ) -> None:
        if isinstance(exc, PipworksError):
            self._record(exc.code, started, reason=exc.reason)
            await abort_with_error(context, exc, domain=self.domain)
        if _is_abort(exc):
            self._record(_code_name(context.code()) or "UNKNOWN", started)
            return
        if isinstance(exc, Exception) and is_transient_db_error(exc):
            log.warning("database unavailable during rpc", method=self.method, error=repr(exc))
            self._record("UNAVAILABLE", started, reason="DATABASE_UNAVAILABLE")
            await abort_with_error(
                context,
                Unavailable("temporarily unavailable; retry", reason="DATABASE_UNAVAILABLE"),
                domain=self.domain,
            )
        if isinstance(exc, Exception):
            log.error("unhandled error in rpc", method=self.method, exc_info=exc)
            self._record("INTERNAL", started)
            status = internal_status(domain=self.domain)
            await context.abort(status.code, status.details, status.trailing_metadata)
        self._record("CANCELLED", started)

    def _record(self, code: str, started: float, reason: str | None = None) -> None:
        elapsed = time.perf_counter() - started
        RPC_LATENCY.labels(self.service, self.method, code).observe(elapsed)
        level = "error" if code in ("INTERNAL", "UNKNOWN", "DATA_LOSS") else "info"
        getattr(log, level)(
            "rpc",
            method=self.method,
            code=code,
            duration_ms=round(elapsed * 1000, 3),
            reason=reason,
        )


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError out of context.abort(); its module path is private.
    return type(exc).__name__ == "AbortError"


def _code_name(code: grpc.StatusCode | int | None) -> str | None:
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return code.name
    for candidate in grpc.StatusCode:
        if candidate.value[0] == code:
            return candidate.name
    return None


def wrap_handler(handler: grpc.RpcMethodHandler, observed: Any) -> grpc.RpcMethodHandler:
    """Route a method handler's behaviour through ``observed.unary``/``observed.streaming``.

    ``observed`` wraps the call (``unary(behavior, request, context)`` for unary
    responses, an async generator ``streaming(...)`` for streamed ones), whatever the
    request shape.

    A request that cannot be decoded reaches ``observed`` as INVALID_ARGUMENT raised by
    the behaviour (see :mod:`pipworks_platform.malformed`), not as gRPC's own UNKNOWN.
    """
    deserializer = handler.request_deserializer
    kwargs = {
        "request_deserializer": tolerant(deserializer) if deserializer else None,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def checked_uu(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await inner_uu(reject_malformed(request), context)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await observed.unary(checked_uu, request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await observed.unary(inner_su, checked_stream(requests), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        def checked_us(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            return inner_us(reject_malformed(request), context)

        def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            return observed.streaming(checked_us, request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
    inner_ss = handler.stream_stream

    def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        return observed.streaming(inner_ss, checked_stream(requests), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **kwargs)
