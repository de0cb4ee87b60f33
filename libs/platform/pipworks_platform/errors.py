"""Domain-facing errors, one class per gRPC status code, with no gRPC dependency.

Domain and application code raise these; the gRPC layer (:mod:`pipworks_platform.grpc_errors`)
turns them into a status code, a client-safe message and ``google.rpc`` details
(``ErrorInfo`` always, plus ``BadRequest``/``RetryInfo``/``ResourceInfo`` where they apply).
Keeping this module free of gRPC lets domain code stay transport-agnostic and testable.

``message`` and ``metadata`` are sent to clients: never put secrets, personal data or
internal details (SQL, stack traces, hostnames) in them. ``reason`` is the stable,
machine-readable identifier clients branch on, in UPPER_SNAKE (AIP-193).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

__all__ = [
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "FieldViolations",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PipworksError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Violations",
]

# google.rpc.ErrorInfo: reason matches [A-Z][A-Z0-9_]+[A-Z0-9], at most 63 characters;
# metadata keys match [a-z][a-zA-Z0-9-_]+, at most 64 characters.
_REASON_RE = re.compile(r"[A-Z][A-Z0-9_]+[A-Z0-9]")
_MAX_REASON_LENGTH = 63
_METADATA_KEY_RE = re.compile(r"[a-z][a-zA-Z0-9_-]+")
_MAX_METADATA_KEY_LENGTH = 64

# Names of grpc.StatusCode members a PipworksError may map to (all but OK).
_STATUS_CODE_NAMES = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


def _validate_reason(reason: str) -> str:
    if (
        not isinstance(reason, str)
        or len(reason) > _MAX_REASON_LENGTH
        or not _REASON_RE.fullmatch(reason)
    ):
        raise ValueError(
            f"error reason {reason!r} must be UPPER_SNAKE ([A-Z][A-Z0-9_]+[A-Z0-9]), "
            f"at most {_MAX_REASON_LENGTH} characters"
        )
    return reason


def _validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if (
            not isinstance(key, str)
            or len(key) > _MAX_METADATA_KEY_LENGTH
            or not _METADATA_KEY_RE.fullmatch(key)
        ):
            raise ValueError(f"error metadata key {key!r} must match [a-z][a-zA-Z0-9_-]+")
        if not isinstance(value, str):
            raise TypeError(f"error metadata value for {key!r} must be str")
        result[key] = value
    return result


class PipworksError(Exception):
    """Base of all client-facing errors; raise a subclass, which fixes the status code.

    Attributes:
        reason: UPPER_SNAKE machine-readable cause, sent as ``ErrorInfo.reason``.
        message: human-readable text that is safe to show to the client.
        metadata: extra client-safe context, sent as ``ErrorInfo.metadata``.
    """

    #: Name of the ``grpc.StatusCode`` member this class maps to.
    code: ClassVar[str] = "UNKNOWN"
    default_reason: ClassVar[str] = "UNKNOWN"
    default_message: ClassVar[str] = "error"

    reason: str
    message: str
    metadata: dict[str, str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code not in _STATUS_CODE_NAMES:
            raise TypeError(f"{cls.__name__}.code {cls.code!r} is not a grpc.StatusCode name")
        _validate_reason(cls.default_reason)

    def __init__(
        self,
        message: str | None = None,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if type(self) is PipworksError:
            # The base class has no meaningful status code; make callers choose one.
            raise TypeError("raise a PipworksError subclass such as InvalidArgument or NotFound")
        self.message = message if message is not None else self.default_message
        self.reason = _validate_reason(reason if reason is not None else self.default_reason)
        self.metadata = _validate_metadata(metadata)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: ``field`` is a path such as ``"address.postal_code"``."""

    field: str
    description: str


class InvalidArgument(PipworksError):
    """The request itself is malformed, independent of system state."""

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"
    default_message = "the request has invalid fields"

    violations: tuple[FieldViolation, ...]

    def __init__(
        self,
        message: str | None = None,
        *,
        violations: Sequence[FieldViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.violations = tuple(violations)
        if message is None and len(self.violations) == 1:
            only = self.violations[0]
            message = f"{only.field}: {only.description}"
        super().__init__(message, reason=reason, metadata=metadata)

    @classmethod
    def for_field(
        cls,
        field: str,
        description: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> InvalidArgument:
        """Shortcut for the common single-field case."""
        return cls(
            violations=[FieldViolation(field, description)], reason=reason, metadata=metadata
        )


class NotFound(PipworksError):
    """The resource does not exist (or the caller may not know that it does)."""

    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"
    default_message = "not found"

    def __init__(
        self,
        resource_type: str,
        resource_id: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        # The default message names only the type: ids may be personal (e.g. an email).
        super().__init__(
            message if message is not None else f"{resource_type} not found",
            reason=reason,
            metadata=metadata,
        )


class AlreadyExists(PipworksError):
    """The resource the client tried to create already exists."""

    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"
    default_message = "already exists"


class FailedPrecondition(PipworksError):
    """The system is not in a state required for the operation; retrying won't help."""

    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"
    default_message = "the operation is not allowed in the current state"


class PermissionDenied(PipworksError):
    """The caller is authenticated but not allowed to do this."""

    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"
    default_message = "permission denied"


class Unauthenticated(PipworksError):
    """The caller has no valid credentials."""

    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"
    default_message = "authentication required"


class ResourceExhausted(PipworksError):
    """A quota or rate limit was hit; ``retry_after`` tells the client when to retry."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"
    default_message = "too many requests"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: timedelta | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if retry_after is not None and retry_after < timedelta(0):
            raise ValueError("retry_after must not be negative")
        self.retry_after = retry_after
        super().__init__(message, reason=reason, metadata=metadata)


class Aborted(PipworksError):
    """A concurrency conflict (e.g. optimistic-lock failure); the client may retry."""

    code = "ABORTED"
    default_reason = "ABORTED"
    default_message = "the operation was aborted by a concurrent change; retry"


class Unavailable(PipworksError):
    """A dependency is temporarily unavailable; the client may retry with backoff."""

    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"
    default_message = "the service is temporarily unavailable"


class DeadlineExceeded(PipworksError):
    """The operation did not complete in time."""

    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"
    default_message = "the operation timed out"


class Violations:
    """Collects field violations so a request is rejected once, listing every problem.

    ``check(condition, field, description)`` records a violation when ``condition`` is
    false (it reads like an assertion of what must hold)::

        v = Violations()
        v.check(len(name) <= 100, "name", "must be at most 100 characters")
        v.check(EMAIL_RE.fullmatch(email) is not None, "email", "must be a valid address")
        v.raise_if_any()
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def check(self, condition: object, field: str, description: str) -> bool:
        """Record a violation unless ``condition`` is truthy; return ``bool(condition)``."""
        ok = bool(condition)
        if not ok:
            self.add(field, description)
        return ok

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[FieldViolation]:
        return iter(self._items)

    def raise_if_any(
        self,
        message: str | None = None,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Raise :class:`InvalidArgument` carrying every recorded violation, if any."""
        if self._items:
            raise InvalidArgument(message, violations=self._items, reason=reason, metadata=metadata)


#: Alias; ``Violations`` is the preferred name.
FieldViolations = Violations
