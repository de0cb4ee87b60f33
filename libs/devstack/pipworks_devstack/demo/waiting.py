"""Steps fail with a message saying which step and why; asynchronous effects are polled."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from pipworks_platform.grpc_errors import error_details

__all__ = ["StepFailed", "describe_rpc_error", "wait_until"]

T = TypeVar("T")


class StepFailed(Exception):
    """A golden-path step did not have its effect; ``step`` names it."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"step {step!r} failed: {reason}")
        self.step = step
        self.reason = reason


def describe_rpc_error(error: grpc.RpcError) -> str:
    """``CODE REASON: message`` with any field violations, as a caller would log it."""
    details = error_details(error)
    reason = details.reason if details.reason not in (None, details.code.name) else ""
    text = details.code.name + (f" {reason}" if reason else "") + f": {details.message}"
    if details.field_violations and details.field_violations[0][1] not in details.message:
        text += " (" + "; ".join(f"{f}: {d}" for f, d in details.field_violations) + ")"
    return text


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.25,
) -> T:
    """Call ``probe`` until it returns something other than ``None`` (or ``False``).

    Events travel through outboxes and JetStream, so effects in other services are
    eventually visible; a deadline turns "never" into a clear failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except grpc.RpcError as exc:
            last = describe_rpc_error(exc)
            value = None
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            suffix = f" (last: {last})" if last else ""
            raise TimeoutError(f"no {what} after {timeout:.0f} s{suffix}")
        time.sleep(interval)
