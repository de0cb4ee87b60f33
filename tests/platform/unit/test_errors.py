"""Domain errors and their rich gRPC statuses, checked through a real grpc.aio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from pipworks_platform.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PipworksError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Violations,
)
from pipworks_platform.grpc_errors import (
    INTERNAL_MESSAGE,
    ErrorDetails,
    abort_with_error,
    abort_with_status,
    error_details,
    internal_status,
    to_grpc_status,
)

DOMAIN = "test.pipworks.io"
METHOD = "/pipworks.testing.v1.ErrorService/Raise"
DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_SECRET = "password=hunter2 host=db-primary.internal"


@dataclass(frozen=True)
class Case:
    make: Callable[[], PipworksError]
    code: grpc.StatusCode
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[tuple[str, str]] = field(default_factory=list)
    retry_after: timedelta | None = None
    resource: tuple[str, str] | None = None


CASES: dict[str, Case] = {
    "invalid_argument": Case(
        make=lambda: InvalidArgument(
            "the sign-up form has errors",
            violations=[
                FieldViolation("email", "must be a valid address"),
                FieldViolation("address.postal_code", "must not be empty"),
            ],
            reason="SIGNUP_INVALID",
            metadata={"form": "signup"},
        ),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="SIGNUP_INVALID",
        message="the sign-up form has errors",
        metadata={"form": "signup"},
        violations=[
            ("email", "must be a valid address"),
            ("address.postal_code", "must not be empty"),
        ],
    ),
    "invalid_argument_for_field": Case(
        make=lambda: InvalidArgument.for_field("page_size", "must be between 1 and 100"),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_ARGUMENT",
        message="page_size: must be between 1 and 100",
        violations=[("page_size", "must be between 1 and 100")],
    ),
    "not_found": Case(
        make=lambda: NotFound("user", "usr_123"),
        code=grpc.StatusCode.NOT_FOUND,
        reason="NOT_FOUND",
        message="user not found",
        resource=("user", "usr_123"),
    ),
    "already_exists": Case(
        make=lambda: AlreadyExists("email already registered", reason="EMAIL_TAKEN"),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="EMAIL_TAKEN",
        message="email already registered",
    ),
    "failed_precondition": Case(
        make=lambda: FailedPrecondition(
            "KYC must be approved first",
            reason="KYC_NOT_APPROVED",
            metadata={"kyc_status": "PENDING"},
        ),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="KYC_NOT_APPROVED",
        message="KYC must be approved first",
        metadata={"kyc_status": "PENDING"},
    ),
    "permission_denied": Case(
        make=lambda: PermissionDenied(reason="ROLE_REQUIRED", metadata={"role": "compliance"}),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="ROLE_REQUIRED",
        message="permission denied",
        metadata={"role": "compliance"},
    ),
    "unauthenticated": Case(
        make=lambda: Unauthenticated("token expired", reason="TOKEN_EXPIRED"),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_EXPIRED",
        message="token expired",
    ),
    "resource_exhausted": Case(
        make=lambda: ResourceExhausted(retry_after=timedelta(seconds=30, milliseconds=500)),
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        reason="RESOURCE_EXHAUSTED",
        message="too many requests",
        retry_after=timedelta(seconds=30, milliseconds=500),
    ),
    "resource_exhausted_no_retry": Case(
        make=lambda: ResourceExhausted("quota used up", reason="QUOTA_EXCEEDED"),
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        reason="QUOTA_EXCEEDED",
        message="quota used up",
    ),
    "aborted": Case(
        make=lambda: Aborted(reason="VERSION_CONFLICT"),
        code=grpc.StatusCode.ABORTED,
        reason="VERSION_CONFLICT",
        message="the operation was aborted by a concurrent change; retry",
    ),
    "unavailable": Case(
        make=lambda: Unavailable("MetaTrader server unreachable", reason="MT_UNAVAILABLE"),
        code=grpc.StatusCode.UNAVAILABLE,
        reason="MT_UNAVAILABLE",
        message="MetaTrader server unreachable",
    ),
    "deadline_exceeded": Case(
        make=lambda: DeadlineExceeded(),
        code=grpc.StatusCode.DEADLINE_EXCEEDED,
        reason="DEADLINE_EXCEEDED",
        message="the operation timed out",
    ),
    "non_ascii_message": Case(
        make=lambda: InvalidArgument.for_field("name", "darf nicht leer sein — ungültig"),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_ARGUMENT",
        message="name: darf nicht leer sein — ungültig",
        violations=[("name", "darf nicht leer sein — ungültig")],
    ),
}


async def _raise(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    name = request.decode()
    if name == "boom":
        try:
            raise RuntimeError(INTERNAL_SECRET)
        except RuntimeError:
            await abort_with_status(context, internal_status(domain=DOMAIN))
    await abort_with_error(context, CASES[name].make(), domain=DOMAIN)


@pytest.fixture(scope="module")
async def target() -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "pipworks.testing.v1.ErrorService",
                {"Raise": grpc.unary_unary_rpc_method_handler(_raise)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def _call(target: str, name: str, method: str = METHOD) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await channel.unary_unary(method)(name.encode(), timeout=10)
    return excinfo.value


@pytest.mark.parametrize("name", list(CASES))
async def test_error_round_trips_through_real_server(target: str, name: str) -> None:
    case = CASES[name]
    details = error_details(await _call(target, name))
    assert details == ErrorDetails(
        code=case.code,
        message=case.message,
        reason=case.reason,
        domain=DOMAIN,
        metadata=case.metadata,
        field_violations=case.violations,
        retry_after=case.retry_after,
        resource_type=case.resource[0] if case.resource else None,
        resource_name=case.resource[1] if case.resource else None,
    )


async def test_sync_client_error_is_parsed_too(target: str) -> None:
    def call() -> ErrorDetails:
        with grpc.insecure_channel(target) as channel:
            try:
                channel.unary_unary(METHOD)(b"invalid_argument", timeout=10)
            except grpc.RpcError as error:
                return error_details(error)
        raise AssertionError("call did not fail")

    details = await asyncio.to_thread(call)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "SIGNUP_INVALID"
    assert ("email", "must be a valid address") in details.field_violations


async def test_internal_status_leaks_nothing_over_the_wire(target: str) -> None:
    error = await _call(target, "boom")
    details = error_details(error)
    assert details.code == grpc.StatusCode.INTERNAL
    assert details.message == INTERNAL_MESSAGE
    assert details.reason == "INTERNAL"
    assert details.domain == DOMAIN
    assert "hunter2" not in (error.details() or "")
    assert "hunter2" not in str(error)
    for _key, value in error.trailing_metadata() or ():
        raw = value if isinstance(value, bytes) else value.encode()
        assert b"hunter2" not in raw
        assert b"db-primary" not in raw


async def test_error_without_rich_details(target: str) -> None:
    details = error_details(await _call(target, "x", method="/pipworks.testing.v1.Nope/Missing"))
    assert details.code == grpc.StatusCode.UNIMPLEMENTED
    assert details.reason is None
    assert details.domain is None
    assert details.field_violations == []


def _rich(status: grpc.Status) -> status_pb2.Status:
    ((key, value),) = status.trailing_metadata
    assert key == DETAILS_KEY
    return status_pb2.Status.FromString(value)


def test_to_grpc_status_builds_standard_details() -> None:
    status = to_grpc_status(
        InvalidArgument.for_field("email", "must be a valid address", reason="EMAIL_INVALID"),
        domain=DOMAIN,
    )
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "email: must be a valid address"
    rich = _rich(status)
    assert rich.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert rich.details[0].Unpack(info)
    assert rich.details[1].Unpack(bad_request)
    assert (info.reason, info.domain) == ("EMAIL_INVALID", DOMAIN)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("email", "must be a valid address")
    ]
    # grpc_status agrees with what we produced.
    assert rpc_status.to_status(rich).code == status.code


def test_to_grpc_status_requires_domain() -> None:
    with pytest.raises(ValueError, match="domain"):
        to_grpc_status(NotFound("user", "1"), domain="")


def test_internal_status_carries_trace_id_but_no_exception_text() -> None:
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("rpc") as span:
        status = internal_status(domain=DOMAIN)
    assert status.code == grpc.StatusCode.INTERNAL
    assert status.details == INTERNAL_MESSAGE
    info = error_details_pb2.ErrorInfo()
    assert _rich(status).details[0].Unpack(info)
    assert info.reason == "INTERNAL"
    assert info.metadata["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    outside = error_details_pb2.ErrorInfo()
    assert _rich(internal_status(domain=DOMAIN)).details[0].Unpack(outside)
    assert "trace_id" not in outside.metadata


def test_reason_must_be_upper_snake() -> None:
    for bad in ("email_taken", "EmailTaken", "_X", "X", "A" * 64, "EMAIL TAKEN", "TAKEN_"):
        with pytest.raises(ValueError, match="UPPER_SNAKE"):
            AlreadyExists(reason=bad)
    assert AlreadyExists(reason="EMAIL_TAKEN_2").reason == "EMAIL_TAKEN_2"


def test_metadata_is_validated_and_copied() -> None:
    with pytest.raises(ValueError, match="metadata key"):
        FailedPrecondition(metadata={"Bad Key": "x"})
    with pytest.raises(TypeError, match="must be str"):
        FailedPrecondition(metadata={"limit": 5})  # type: ignore[dict-item]
    source = {"limit": "5"}
    error = FailedPrecondition(metadata=source)
    source["limit"] = "6"
    assert error.metadata == {"limit": "5"}


def test_base_class_and_subclasses_are_checked() -> None:
    with pytest.raises(TypeError, match="subclass"):
        PipworksError("no code")
    with pytest.raises(TypeError, match=r"grpc\.StatusCode"):

        class _Bogus(PipworksError):
            code = "TEAPOT"

    class EmailTaken(AlreadyExists):
        default_reason = "EMAIL_TAKEN"

    error = EmailTaken()
    assert (error.code, error.reason, str(error)) == (
        "ALREADY_EXISTS",
        "EMAIL_TAKEN",
        "already exists",
    )


def test_resource_exhausted_rejects_negative_retry() -> None:
    with pytest.raises(ValueError, match="negative"):
        ResourceExhausted(retry_after=timedelta(seconds=-1))


def test_violations_collects_and_raises_once() -> None:
    v = Violations()
    assert v.check(True, "name", "must not be empty")
    v.raise_if_any()  # nothing recorded yet: no exception
    assert not v.check("", "name", "must not be empty")
    assert not v.check(0 > 1, "age", "must be at least 18")
    assert len(v) == 2
    with pytest.raises(InvalidArgument) as excinfo:
        v.raise_if_any(reason="PROFILE_INVALID")
    error = excinfo.value
    assert error.reason == "PROFILE_INVALID"
    assert error.code == "INVALID_ARGUMENT"
    assert error.violations == (
        FieldViolation("name", "must not be empty"),
        FieldViolation("age", "must be at least 18"),
    )
    assert error.message == InvalidArgument.default_message
