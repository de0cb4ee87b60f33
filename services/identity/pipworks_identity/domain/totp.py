"""RFC 6238 time steps and the replay rule for TOTP codes.

A code is checked against the current 30-second step and one step either side (clock
drift). RFC 6238 §5.2: once a code was accepted, it must not be accepted again; we go
one step further and accept only steps *after* the last accepted one, so neither the
same code nor an older one still inside the drift window can be replayed.
"""

from __future__ import annotations

from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1


def time_step(at: datetime) -> int:
    """The RFC 6238 counter T for ``at`` (T0 = Unix epoch, X = 30 s)."""
    return int(at.timestamp()) // STEP_SECONDS


def candidate_steps(at: datetime) -> tuple[int, ...]:
    """Steps a code presented at ``at`` may belong to, current step first."""
    current = time_step(at)
    return (current, *(current + d for d in range(-DRIFT_STEPS, DRIFT_STEPS + 1) if d))


def normalise_code(raw: str) -> str:
    """A code as typed ("123 456") in the form it is compared in ("123456")."""
    return "".join(raw.split())


def is_well_formed(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()
