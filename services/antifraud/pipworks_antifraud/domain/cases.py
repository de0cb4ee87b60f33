"""Case workflow: open → investigating → escalated → closed (false positive / confirmed)."""

from __future__ import annotations

from pipworks_platform.errors import FailedPrecondition

OPEN, INVESTIGATING, ESCALATED = "OPEN", "INVESTIGATING", "ESCALATED"
CLOSED_FALSE_POSITIVE, CLOSED_CONFIRMED = "CLOSED_FALSE_POSITIVE", "CLOSED_CONFIRMED"
STATUSES = (OPEN, INVESTIGATING, ESCALATED, CLOSED_FALSE_POSITIVE, CLOSED_CONFIRMED)
ACTIVE = (OPEN, INVESTIGATING, ESCALATED)
RESOLUTIONS = {"FALSE_POSITIVE": CLOSED_FALSE_POSITIVE, "CONFIRMED": CLOSED_CONFIRMED}

_NEXT = {
    OPEN: {INVESTIGATING, ESCALATED},
    INVESTIGATING: {ESCALATED, OPEN},
    ESCALATED: {INVESTIGATING},
}


def ensure_active(status: str) -> None:
    if status not in ACTIVE:
        raise FailedPrecondition(f"the case is closed ({status})", reason="CASE_CLOSED")


def check_transition(current: str, target: str) -> None:
    """A move between active statuses; closing goes through the resolution."""
    ensure_active(current)
    if target not in _NEXT[current]:
        raise FailedPrecondition(
            f"a case cannot go from {current} to {target}", reason="INVALID_CASE_TRANSITION"
        )
