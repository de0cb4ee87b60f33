"""Commands: validated inputs of the use cases, independent of the wire format."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pipworks_identity.domain.roles import Role


@dataclass(frozen=True)
class Register:
    email: str
    password: str
    country_code: str
    phone: str | None = None
    referral_code: str | None = None


@dataclass(frozen=True)
class VerifyEmail:
    token: str


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass(frozen=True)
class VerifyMfa:
    challenge_token: str
    totp_code: str | None = None
    recovery_code: str | None = None


@dataclass(frozen=True)
class Refresh:
    refresh_token: str


@dataclass(frozen=True)
class AuthenticateServiceAccount:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class RequestPasswordReset:
    email: str


@dataclass(frozen=True)
class ResetPassword:
    token: str
    new_password: str


@dataclass(frozen=True)
class ChangePassword:
    current_password: str
    new_password: str


@dataclass(frozen=True)
class ConfirmTotp:
    code: str


@dataclass(frozen=True)
class DisableTotp:
    password: str
    code: str


@dataclass(frozen=True)
class SessionCursor:
    """Keyset position after the last session of a page (newest-first order)."""

    created_at: datetime
    session_id: uuid.UUID


@dataclass(frozen=True)
class ListSessions:
    page_size: int
    after: SessionCursor | None = None


@dataclass(frozen=True)
class RevokeSession:
    session_id: uuid.UUID


@dataclass(frozen=True)
class CreateStaffUser:
    email: str
    password: str
    roles: frozenset[Role]
    country_code: str


@dataclass(frozen=True)
class ChangeRole:
    user_id: uuid.UUID
    role: Role


@dataclass(frozen=True)
class CreateServiceAccount:
    name: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class GetUser:
    user_id: uuid.UUID


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind a call (from the access token)."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None
