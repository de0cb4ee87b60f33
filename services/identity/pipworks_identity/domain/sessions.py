"""Sessions and their refresh-token families (OAuth 2.0 Security BCP §4.14.2).

A session is one sign-in; its refresh tokens form a family where only the newest is
live. Every refresh spends the presented token and issues its successor. A spent token
presented again means two parties hold the family (the token leaked), and since we
cannot tell the thief from the owner, the whole family is revoked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class RefreshVerdict(enum.Enum):
    ROTATE = "rotate"
    REUSED = "reused"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class FamilyState:
    """The session side: whether it is still alive, and which generation is current."""

    revoked: bool
    expires_at: datetime
    generation: int


@dataclass(frozen=True)
class PresentedToken:
    """The token side: its generation, whether it was spent, when it expires."""

    generation: int
    spent: bool
    expires_at: datetime


def judge_refresh(family: FamilyState, token: PresentedToken, now: datetime) -> RefreshVerdict:
    """What to do with a refresh token presented at ``now``.

    Reuse is checked before expiry: an old, spent token showing up is a leak signal
    even after it has expired.
    """
    if family.revoked:
        return RefreshVerdict.REVOKED
    if token.spent or token.generation != family.generation:
        return RefreshVerdict.REUSED
    if now >= token.expires_at or now >= family.expires_at:
        return RefreshVerdict.EXPIRED
    return RefreshVerdict.ROTATE


def refresh_token_expiry(now: datetime, ttl: timedelta, session_expires_at: datetime) -> datetime:
    """A refresh token lives ``ttl`` (idle timeout) but never past its session's end."""
    return min(now + ttl, session_expires_at)


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, as recorded on sessions and login events."""

    ip_address: str = ""
    user_agent: str = ""
    device_id: str = ""
