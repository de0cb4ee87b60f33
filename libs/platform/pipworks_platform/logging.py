"""Structured JSON logging for every Pipworks process.

One JSON object per line on stdout (the container runtime ships it), always with
``timestamp`` (ISO-8601 UTC), ``level``, ``service``, ``event``, ``logger`` and the
OpenTelemetry ``trace_id``/``span_id`` of the current span (empty strings outside a span),
so a log line can be joined to its trace. Standard-library records (grpc, sqlalchemy,
alembic, nats, asyncio, ...) go through the same processors via structlog's
``ProcessorFormatter``, so there is exactly one format to parse.

Secrets and personal data must never reach logs: a redaction processor replaces the value
of any key that looks sensitive (passwords, tokens, keys, OTP codes, cookies, emails, phone
and document numbers, ...), at any depth, with ``"[REDACTED]"``, and scrubs bearer tokens,
JWTs and URL passwords out of free text. It is a safety net, not a licence: do not pass
sensitive values to a logger in the first place. Tracebacks are rendered as structured
fields *without* local variables, which would otherwise leak whatever was in scope.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "NOISY_LOGGERS",
    "REDACTED",
    "SecretRedactor",
    "add_trace_context",
    "configure_logging",
    "get_logger",
]

REDACTED = "[REDACTED]"

#: Libraries that are chatty at INFO/DEBUG; held at WARNING (or the service level if higher).
NOISY_LOGGERS: tuple[str, ...] = (
    "asyncio",
    "grpc",
    "httpcore",
    "httpx",
    "nats",
    "sqlalchemy",
    "urllib3",
)

_LEVELS: Mapping[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

# Keys emitted first, in this order, so lines are easy to scan by eye.
_LEADING_KEYS = ("timestamp", "level", "service", "event", "logger", "trace_id", "span_id")

# A key is sensitive if any of its words (split on non-alphanumerics and camelCase,
# singularised) is one of these ...
_SECRET_WORDS = frozenset(
    {
        # credentials and secrets
        "apikey",
        "authorization",
        "bearer",
        "cookie",
        "credential",
        "hotp",
        "jwt",
        "material",
        "mnemonic",
        "otp",
        "passphrase",
        "passwd",
        "password",
        "pin",
        "privkey",
        "pwd",
        "secret",
        "token",
        "totp",
        # personal data
        "birth",
        "birthdate",
        "birthday",
        "cvc",
        "cvv",
        "dob",
        "email",
        "iban",
        "passport",
        "phone",
        "postcode",
        "ssn",
        "street",
    }
)
# ... or it contains one of these adjacent word pairs ...
_SECRET_PAIRS = frozenset(
    {
        ("auth", "code"),
        ("auth", "header"),
        ("backup", "code"),
        ("billing", "address"),
        ("card", "number"),
        ("document", "number"),
        ("family", "name"),
        ("first", "name"),
        ("full", "name"),
        ("given", "name"),
        ("home", "address"),
        ("last", "name"),
        ("legal", "name"),
        ("mailing", "address"),
        ("middle", "name"),
        ("national", "id"),
        ("postal", "address"),
        ("postal", "code"),
        ("recovery", "code"),
        ("reset", "code"),
        ("residential", "address"),
        ("session", "id"),
        ("tax", "id"),
        ("verification", "code"),
        ("zip", "code"),
    }
)
# ... or it ends in "key"/"keys" (api_key, private_key, signing_key, key, ...) unless the
# word before marks a non-secret key.
_NON_SECRET_KEY_PREFIXES = frozenset(
    {
        "cache",
        "composite",
        "dedup",
        "dedupe",
        "foreign",
        "idempotency",
        "lookup",
        "partition",
        "primary",
        "public",
        "routing",
        "sort",
        "unique",
    }
)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")
_MAX_DEPTH = 10
_MAX_CACHE = 4096


def _words(key: str) -> tuple[str, ...]:
    words = _NON_ALNUM.split(_CAMEL_BOUNDARY.sub("_", key).lower())
    return tuple(
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words if w
    )


class SecretRedactor:
    """structlog processor that masks sensitive values, recursively and without mutation.

    Matching is on the key name, case-insensitively, for dict keys and for
    ``(key, value)`` pairs such as gRPC metadata. ``None`` and booleans are left alone
    (``password_set=True`` carries no secret). Free text is scrubbed of bearer tokens,
    JWTs and ``scheme://user:password@`` credentials.
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self._extra = tuple(w for w in (_words(k) for k in extra_keys) if w)
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        cached = self._cache.get(key)
        if cached is None:
            cached = self._classify(key)
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def _classify(self, key: str) -> bool:
        words = _words(key)
        if not words:
            return False
        if any(w in _SECRET_WORDS for w in words):
            return True
        if any(pair in _SECRET_PAIRS for pair in pairwise(words)):
            return True
        if words[-1] == "key" and (len(words) == 1 or words[-2] not in _NON_SECRET_KEY_PREFIXES):
            return True
        return any(
            words[i : i + len(extra)] == extra
            for extra in self._extra
            for i in range(len(words) - len(extra) + 1)
        )

    def redact(self, value: Any, depth: int = 0) -> Any:
        """Return ``value`` with sensitive parts masked; containers are copied, not mutated."""
        if isinstance(value, str):
            return _scrub_text(value)
        if depth >= _MAX_DEPTH or isinstance(value, bool | int | float | None):
            return value
        if isinstance(value, Mapping):
            return {k: self._redact_item(k, v, depth) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            items = [self._redact_element(item, depth) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return value

    def _redact_item(self, key: Any, value: Any, depth: int) -> Any:
        if (
            isinstance(key, str)
            and value is not None
            and not isinstance(value, bool)
            and self.is_sensitive(key)
        ):
            return REDACTED
        return self.redact(value, depth + 1)

    def _redact_element(self, item: Any, depth: int) -> Any:
        # (key, value) pairs: gRPC metadata, HTTP header lists.
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            return (item[0], self._redact_item(item[0], item[1], depth + 1))
        return self.redact(item, depth + 1)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {k: self._redact_item(k, v, 0) for k, v in event_dict.items()}


def _scrub_text(text: str) -> str:
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    return text


def add_trace_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id``/``span_id`` (lowercase hex) of the current span, or ``""``."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(span_context.trace_id)
        event_dict["span_id"] = trace.format_span_id(span_context.span_id)
    else:
        event_dict.setdefault("trace_id", "")
        event_dict.setdefault("span_id", "")
    return event_dict


def _add_service(service: str) -> Processor:
    def add_service(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict["service"] = service
        return event_dict

    return add_service


def _order_keys(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    ordered = {k: event_dict.pop(k) for k in _LEADING_KEYS if k in event_dict}
    ordered.update(event_dict)
    return ordered


def _parse_level(level: str) -> int:
    number = _LEVELS.get(level.upper()) if isinstance(level, str) else None
    if number is None:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
    return number


def configure_logging(
    service: str,
    level: str = "INFO",
    *,
    stream: TextIO | None = None,
    extra_redacted_keys: Iterable[str] = (),
) -> None:
    """Route structlog and stdlib logging to JSON lines on ``stream`` (default stdout).

    Safe to call again (e.g. in tests, or after settings are loaded): the handler it
    installed before is replaced, never duplicated. Handlers installed by others (such as
    pytest's caplog) are left in place. ``extra_redacted_keys`` adds service-specific
    sensitive key names to the built-in list.
    """
    if not isinstance(service, str) or not service.strip():
        raise ValueError("service must be a non-empty string")
    level_number = _parse_level(level)

    # Runs at the call site for both structlog and stdlib records: everything that
    # depends on the calling context (contextvars, current span, active exception).
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, use_rich=False)
        ),
        structlog.processors.UnicodeDecoder(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *pre_chain],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            SecretRedactor(extra_redacted_keys),
            _order_keys,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)
    handler._pipworks_handler = True  # type: ignore[attr-defined]

    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_pipworks_handler", False):
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)
    root.setLevel(level_number)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, level_number))
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *pre_chain,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``name`` defaults to the calling module's name."""
    if name is None:
        return structlog.stdlib.get_logger(**initial_values)
    return structlog.stdlib.get_logger(name, **initial_values)
