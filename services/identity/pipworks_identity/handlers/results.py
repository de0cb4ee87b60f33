"""What use cases hand back to the API layer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pipworks_identity.adapters.access_tokens import AccessToken
from pipworks_identity.adapters.repositories import SessionRecord
from pipworks_identity.commands import SessionCursor


@dataclass(frozen=True)
class TokenPair:
    access_token: AccessToken
    refresh_token: str
    refresh_expires_at: datetime
    session_id: uuid.UUID


@dataclass(frozen=True)
class MfaChallenge:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """Exactly one of ``tokens`` and ``challenge`` is set."""

    tokens: TokenPair | None = None
    challenge: MfaChallenge | None = None


@dataclass(frozen=True)
class Registered:
    user_id: uuid.UUID
    # Only in development; in production the token reaches the user by email.
    verification_token: str | None


@dataclass(frozen=True)
class TotpEnrollment:
    secret: str
    otpauth_uri: str
    qr_png: bytes


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionRecord]
    next_cursor: SessionCursor | None


@dataclass(frozen=True)
class ServiceAccountCredentials:
    client_id: str
    client_secret: str
