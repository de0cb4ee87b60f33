"""Map :mod:`pipworks_platform.errors` to rich gRPC statuses, and read them back.

Server side: :func:`to_grpc_status` builds a ``grpc.Status`` whose trailing metadata
carries a serialized ``google.rpc.Status`` (``grpc-status-details-bin``) with
``google.rpc.ErrorInfo`` always, plus ``BadRequest`` (InvalidArgument), ``RetryInfo``
(ResourceExhausted with ``retry_after``) and ``ResourceInfo`` (NotFound). This is the
standard rich error model (AIP-193), readable by any gRPC client, not just Python.

Client side: :func:`error_details` turns a failed call into an :class:`ErrorDetails`, for
callers that branch on ``reason`` and for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from pipworks_platform.errors import (
    InvalidArgument,
    NotFound,
    PipworksError,
    ResourceExhausted,
)

__all__ = [
    "INTERNAL_MESSAGE",
    "ErrorDetails",
    "abort_with_error",
    "abort_with_status",
    "error_details",
    "internal_status",
    "to_grpc_status",
]

#: What clients see for unhandled exceptions; the real cause goes to logs and traces only.
INTERNAL_MESSAGE = "internal error"
INTERNAL_REASON = "INTERNAL"


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _require_domain(domain: str) -> str:
    if not isinstance(domain, str) or not domain.strip():
        raise ValueError("domain must be a non-empty string such as 'identity.pipworks.io'")
    return domain


def _status(code: grpc.StatusCode, message: str, details: list[Message]) -> grpc.Status:
    proto = status_pb2.Status(
        code=code.value[0], message=message, details=[_pack(d) for d in details]
    )
    return rpc_status.to_status(proto)


def to_grpc_status(error: PipworksError, *, domain: str) -> grpc.Status:
    """Build the ``grpc.Status`` (code, message, rich details) for a domain error.

    ``domain`` identifies the service that produced the reason, e.g.
    ``"identity.pipworks.io"``; reasons are unique within a domain.
    """
    code = grpc.StatusCode[error.code]
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=_require_domain(domain), metadata=error.metadata
        )
    ]
    if isinstance(error, InvalidArgument) and error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    elif isinstance(error, ResourceExhausted) and error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(error.retry_after)
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    elif isinstance(error, NotFound):
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=error.resource_type,
                resource_name=error.resource_id,
                description=error.message,
            )
        )
    return _status(code, error.message, details)


def internal_status(*, domain: str) -> grpc.Status:
    """Status for an unhandled exception: INTERNAL with a generic message.

    Deliberately takes no exception: its text may hold SQL, secrets or personal data.
    The current trace id (if any) goes into ``ErrorInfo.metadata["trace_id"]`` so a
    client report can be matched to the server's logs and trace.
    """
    metadata: dict[str, str] = {}
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        metadata["trace_id"] = trace.format_trace_id(span_context.trace_id)
    info = error_details_pb2.ErrorInfo(
        reason=INTERNAL_REASON, domain=_require_domain(domain), metadata=metadata
    )
    return _status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, [info])


async def abort_with_status(
    context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status
) -> NoReturn:
    """End the RPC with ``status``, including its rich-details trailing metadata."""
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("grpc.aio.ServicerContext.abort() returned")  # pragma: no cover


async def abort_with_error(
    context: grpc.aio.ServicerContext[Any, Any], error: PipworksError, *, domain: str
) -> NoReturn:
    """End the RPC with the status :func:`to_grpc_status` builds for ``error``."""
    await abort_with_status(context, to_grpc_status(error, domain=domain))


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What a failed call carried: status plus the parsed ``google.rpc`` details.

    ``reason``/``domain`` are ``None`` when the server sent no ``ErrorInfo`` (e.g. the
    error came from gRPC itself: deadline, connection failure).
    """

    code: grpc.StatusCode
    message: str
    reason: str | None = None
    domain: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: list[tuple[str, str]] = field(default_factory=list)
    retry_after: timedelta | None = None
    resource_type: str | None = None
    resource_name: str | None = None


def _rich_status(rpc_error: grpc.RpcError) -> status_pb2.Status | None:
    if not callable(getattr(rpc_error, "trailing_metadata", None)):
        return None
    try:
        return rpc_status.from_call(rpc_error)
    except (ValueError, DecodeError):
        # Undecodable, or its code/message disagree with the call's (something in
        # between rewrote the status): the details no longer describe this error.
        return None


def error_details(rpc_error: grpc.RpcError | grpc.aio.AioRpcError) -> ErrorDetails:
    """Parse the status and rich details of a failed call (sync or asyncio)."""
    code = rpc_error.code() if callable(getattr(rpc_error, "code", None)) else None
    message = rpc_error.details() if callable(getattr(rpc_error, "details", None)) else None
    result: dict[str, Any] = {
        "code": code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
        "message": message or "",
    }
    rich = _rich_status(rpc_error)
    if rich is None:
        return ErrorDetails(**result)
    violations: list[tuple[str, str]] = []
    for packed in rich.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            result.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            packed.Unpack(bad_request)
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            result["retry_after"] = retry.retry_delay.ToTimedelta()
        elif packed.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            resource = error_details_pb2.ResourceInfo()
            packed.Unpack(resource)
            result.update(
                resource_type=resource.resource_type, resource_name=resource.resource_name
            )
    return ErrorDetails(**result, field_violations=violations)
