"""JSON logging: required fields, trace correlation, redaction, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from pipworks_platform.logging import (
    NOISY_LOGGERS,
    REDACTED,
    SecretRedactor,
    configure_logging,
    get_logger,
)

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")

Lines = Callable[[], list[dict[str, Any]]]


def _ours(handler: logging.Handler) -> bool:
    return bool(getattr(handler, "_pipworks_handler", False))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo configure_logging's global changes so other tests see a pristine setup."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def stream(restore_logging: None) -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("test-svc", "DEBUG", stream=buffer)
    return buffer


@pytest.fixture
def lines(stream: io.StringIO) -> Lines:
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_has_the_required_fields(lines: Lines) -> None:
    get_logger("pipworks.test").info("user signed in", attempt=2)
    (line,) = lines()
    assert line["event"] == "user signed in"
    assert line["service"] == "test-svc"
    assert line["level"] == "info"
    assert line["logger"] == "pipworks.test"
    assert line["attempt"] == 2
    assert line["trace_id"] == ""
    assert line["span_id"] == ""
    timestamp = datetime.fromisoformat(line["timestamp"])
    assert timestamp.utcoffset() is not None
    assert timestamp.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - timestamp).total_seconds()) < 60
    assert list(line)[:4] == ["timestamp", "level", "service", "event"]


def test_trace_and_span_ids_inside_a_span(lines: Lines) -> None:
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("rpc") as span:
        get_logger("pipworks.test").info("inside")
        logging.getLogger("pipworks.stdlib").warning("stdlib inside")
    get_logger("pipworks.test").info("outside")
    inside, stdlib_inside, outside = lines()
    context = span.get_span_context()
    for line in (inside, stdlib_inside):
        assert HEX32.fullmatch(line["trace_id"])
        assert HEX16.fullmatch(line["span_id"])
        assert line["trace_id"] == f"{context.trace_id:032x}"
        assert line["span_id"] == f"{context.span_id:016x}"
    assert trace.get_current_span().get_span_context().is_valid is False
    assert (outside["trace_id"], outside["span_id"]) == ("", "")


def test_nested_secrets_and_personal_data_are_redacted(stream: io.StringIO, lines: Lines) -> None:
    get_logger("pipworks.test").info(
        "login attempt",
        password="hunter2",
        user={
            "id": "usr_1",
            "email": "alice@example.com",
            "profile": {"totpSecret": "JBSWY3DPEHPK3PXP", "date_of_birth": "1990-01-02"},
            "mfa_enabled": True,
        },
        metadata=[("authorization", "Bearer abc.def.ghi"), ("x-request-id", "r-1")],
        api_keys=["k-one", "k-two"],
        idempotency_key="idem-1",
        note="retrying with Bearer sekrit-token against postgresql://svc:dbpass@db/identity",
    )
    raw = stream.getvalue()
    for secret in (
        "hunter2",
        "alice@example.com",
        "JBSWY3DPEHPK3PXP",
        "1990-01-02",
        "abc.def.ghi",
        "k-one",
        "sekrit-token",
        "dbpass",
    ):
        assert secret not in raw
    (line,) = lines()
    assert line["password"] == REDACTED
    assert line["user"]["id"] == "usr_1"
    assert line["user"]["email"] == REDACTED
    assert line["user"]["profile"] == {"totpSecret": REDACTED, "date_of_birth": REDACTED}
    assert line["user"]["mfa_enabled"] is True
    assert line["metadata"] == [["authorization", REDACTED], ["x-request-id", "r-1"]]
    assert line["api_keys"] == REDACTED
    assert line["idempotency_key"] == "idem-1"
    assert line["note"] == (
        f"retrying with Bearer {REDACTED} against postgresql://svc:{REDACTED}@db/identity"
    )


def test_contextvars_are_included_and_redacted(lines: Lines) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-9", session_token="tok-9")
    get_logger("pipworks.test").info("handled")
    (line,) = lines()
    assert line["request_id"] == "req-9"
    assert line["session_token"] == REDACTED


def test_stdlib_records_are_rendered_as_json(stream: io.StringIO, lines: Lines) -> None:
    logging.getLogger("pipworks.stdlib").info(
        "hello %s", "world", extra={"api_key": "k-123", "order_id": "o-1"}
    )
    logging.getLogger("sqlalchemy.engine").info("SELECT 1")  # noisy: held at WARNING
    logging.getLogger("grpc._server").warning("grpc warning")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
    first, second, third = lines()
    assert "SELECT 1" not in stream.getvalue()
    assert first["event"] == "hello world"
    assert first["logger"] == "pipworks.stdlib"
    assert first["service"] == "test-svc"
    assert first["api_key"] == REDACTED
    assert first["order_id"] == "o-1"
    assert "k-123" not in stream.getvalue()
    assert (second["logger"], second["level"], second["event"]) == (
        "grpc._server",
        "warning",
        "grpc warning",
    )
    assert third["logger"] == "py.warnings"
    assert "old api" in third["event"]


def _fail_with_local_secret() -> None:
    card_pin = "9876-local-secret"  # must not leak through rendered locals
    raise ValueError(f"bad input ({len(card_pin)} chars)")


def test_exceptions_are_structured_without_locals(stream: io.StringIO, lines: Lines) -> None:
    try:
        _fail_with_local_secret()
    except ValueError:
        get_logger("pipworks.test").exception("structlog failure")
        logging.getLogger("pipworks.stdlib").exception("stdlib failure")
    assert "9876-local-secret" not in stream.getvalue()
    for line in lines():
        assert line["level"] == "error"
        (exception,) = line["exception"]
        assert exception["exc_type"] == "ValueError"
        assert exception["exc_value"] == "bad input (17 chars)"
        assert exception["frames"][-1]["name"] == "_fail_with_local_secret"
        assert all("locals" not in frame for frame in exception["frames"])
        assert "exc_info" not in line


def test_configure_is_idempotent(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("svc-a", stream=first)
    configure_logging("svc-b", stream=second)
    assert sum(_ours(h) for h in logging.getLogger().handlers) == 1
    get_logger("pipworks.test").info("once")
    logging.getLogger("pipworks.stdlib").info("once too")
    assert first.getvalue() == ""
    rendered = [json.loads(line) for line in second.getvalue().splitlines()]
    assert [(line["service"], line["event"]) for line in rendered] == [
        ("svc-b", "once"),
        ("svc-b", "once too"),
    ]


def test_level_filters_and_unknown_level_is_rejected(restore_logging: None) -> None:
    buffer = io.StringIO()
    configure_logging("svc", "warning", stream=buffer)
    get_logger("pipworks.test").info("dropped")
    logging.getLogger("pipworks.stdlib").info("dropped too")
    get_logger("pipworks.test").warning("kept")
    assert [json.loads(line)["event"] for line in buffer.getvalue().splitlines()] == ["kept"]
    with pytest.raises(ValueError, match="'VERBOSE'"):
        configure_logging("svc", "VERBOSE", stream=buffer)
    with pytest.raises(ValueError, match="service"):
        configure_logging("", stream=buffer)


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("newPassword", True),
        ("X-Api-Key", True),
        ("private_key", True),
        ("encryption_keys", True),
        ("key", True),
        ("otp_code", True),
        ("Set-Cookie", True),
        ("client_secret", True),
        ("refresh_token", True),
        ("document_number", True),
        ("phoneNumber", True),
        ("home_address", True),
        ("key_id", False),
        ("idempotency_key", False),
        ("public_key", False),
        ("grpc_address", False),
        ("status_code", False),
        ("user_id", False),
    ],
)
def test_sensitive_key_classification(key: str, sensitive: bool) -> None:
    assert SecretRedactor().is_sensitive(key) is sensitive


def test_extra_redacted_keys() -> None:
    redactor = SecretRedactor(extra_keys=["mt_login"])
    assert redactor.is_sensitive("MtLogin")
    assert redactor.is_sensitive("user_mt_login")
    assert not redactor.is_sensitive("mt_server")
    source = {"outer": {"mt_login": "123456"}}
    assert redactor.redact(source) == {"outer": {"mt_login": REDACTED}}
    assert source == {"outer": {"mt_login": "123456"}}  # the caller's dict is not mutated
