"""Turn API requests into validated commands, or reject them with every bad field named.

Nothing is read or written before a request passes here, so bad input changes nothing.
Every string field has a length cap: nothing unbounded reaches a hash or the database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_identity import commands
from pipworks_identity.domain import credentials, totp, values
from pipworks_identity.domain.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from pipworks_identity.domain.passwords import PasswordPolicy
from pipworks_identity.domain.roles import STAFF_ROLES, Role
from pipworks_platform import page_tokens
from pipworks_platform.errors import Violations

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PHONE_LENGTH = 32
MAX_CODE_LENGTH = 16
MAX_RECOVERY_CODE_LENGTH = 64
MAX_NAME_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 80
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")

ROLE_FROM_PROTO: dict[int, Role] = {
    pb.ROLE_CLIENT: Role.CLIENT,
    pb.ROLE_IB: Role.IB,
    pb.ROLE_SUPPORT: Role.SUPPORT,
    pb.ROLE_COMPLIANCE: Role.COMPLIANCE,
    pb.ROLE_DEALER: Role.DEALER,
    pb.ROLE_ADMIN: Role.ADMIN,
}


class RequestParser:
    """Parsers of each request; the password policy is configuration, so it is injected."""

    def __init__(self, password_policy: PasswordPolicy) -> None:
        self._policy = password_policy

    def register(self, request: pb.RegisterRequest) -> commands.Register:
        v = Violations()
        email = _parse(v, "email", request.email, values.parse_email)
        password = self._new_password(v, "password", request.password)
        country = _parse(v, "country_code", request.country_code, values.parse_country_code)
        phone = None
        if request.phone.strip() and _capped(v, "phone", request.phone, MAX_PHONE_LENGTH):
            phone = _parse(v, "phone", request.phone, values.parse_phone)
        referral = None
        if request.referral_code.strip():
            referral = _parse(v, "referral_code", request.referral_code, values.parse_referral_code)
        v.raise_if_any()
        return commands.Register(email, password, country, phone, referral)

    def verify_email(self, request: pb.VerifyEmailRequest) -> commands.VerifyEmail:
        v = Violations()
        token = _token(v, "token", request.token)
        v.raise_if_any()
        return commands.VerifyEmail(token)

    def login(self, request: pb.LoginRequest) -> commands.Login:
        v = Violations()
        email = _parse(v, "email", request.email, values.parse_email)
        password = _password(v, "password", request.password)
        v.raise_if_any()
        return commands.Login(email, password)

    def verify_mfa(self, request: pb.VerifyMfaRequest) -> commands.VerifyMfa:
        v = Violations()
        challenge = _token(v, "mfa_challenge_token", request.mfa_challenge_token)
        factor = request.WhichOneof("factor")
        totp_code = recovery_code = None
        if factor == "totp_code":
            totp_code = _totp_code(v, "totp_code", request.totp_code)
        elif factor == "recovery_code":
            recovery_code = _recovery_code(v, "recovery_code", request.recovery_code)
        else:
            v.add("totp_code", "a totp_code or a recovery_code is required")
        v.raise_if_any()
        return commands.VerifyMfa(challenge, totp_code, recovery_code)

    def refresh(self, request: pb.RefreshRequest) -> commands.Refresh:
        v = Violations()
        token = _token(v, "refresh_token", request.refresh_token)
        v.raise_if_any()
        return commands.Refresh(token)

    def authenticate_service_account(
        self, request: pb.AuthenticateServiceAccountRequest
    ) -> commands.AuthenticateServiceAccount:
        v = Violations()
        client_id = request.client_id.strip()
        if _capped(v, "client_id", client_id, MAX_CLIENT_ID_LENGTH):
            v.check(
                credentials.is_well_formed_client_id(client_id),
                "client_id",
                "must be a client id issued by CreateServiceAccount",
            )
        secret = _password(v, "client_secret", request.client_secret)
        v.raise_if_any()
        return commands.AuthenticateServiceAccount(client_id, secret)

    def request_password_reset(
        self, request: pb.RequestPasswordResetRequest
    ) -> commands.RequestPasswordReset:
        v = Violations()
        email = _parse(v, "email", request.email, values.parse_email)
        v.raise_if_any()
        return commands.RequestPasswordReset(email)

    def reset_password(self, request: pb.ResetPasswordRequest) -> commands.ResetPassword:
        v = Violations()
        token = _token(v, "token", request.token)
        password = self._new_password(v, "new_password", request.new_password)
        v.raise_if_any()
        return commands.ResetPassword(token, password)

    def change_password(self, request: pb.ChangePasswordRequest) -> commands.ChangePassword:
        v = Violations()
        current = _password(v, "current_password", request.current_password)
        new = self._new_password(v, "new_password", request.new_password)
        v.raise_if_any()
        return commands.ChangePassword(current, new)

    def confirm_totp(self, request: pb.ConfirmTotpRequest) -> commands.ConfirmTotp:
        v = Violations()
        code = _totp_code(v, "code", request.code)
        v.raise_if_any()
        return commands.ConfirmTotp(code)

    def disable_totp(self, request: pb.DisableTotpRequest) -> commands.DisableTotp:
        v = Violations()
        password = _password(v, "password", request.password)
        code = _totp_code(v, "code", request.code)
        v.raise_if_any()
        return commands.DisableTotp(password, code)

    def list_sessions(self, request: pb.ListSessionsRequest) -> commands.ListSessions:
        v = Violations()
        size = request.page.page_size
        v.check(size >= 0, "page.page_size", "must not be negative")
        cursor = None
        if request.page.page_token:
            cursor = _parse(v, "page.page_token", request.page.page_token, decode_cursor)
        v.raise_if_any()
        page_size = min(size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE
        return commands.ListSessions(page_size=page_size, after=cursor)

    def revoke_session(self, request: pb.RevokeSessionRequest) -> commands.RevokeSession:
        v = Violations()
        session_id = _parse(v, "session_id", request.session_id, _id)
        v.raise_if_any()
        return commands.RevokeSession(session_id)

    def create_staff_user(self, request: pb.CreateStaffUserRequest) -> commands.CreateStaffUser:
        v = Violations()
        email = _parse(v, "email", request.email, values.parse_email)
        password = self._new_password(v, "password", request.password)
        roles = _roles(v, "roles", request.roles, allowed=STAFF_ROLES)
        country = _parse(v, "country_code", request.country_code, values.parse_country_code)
        v.raise_if_any()
        return commands.CreateStaffUser(email, password, roles, country)

    def change_role(
        self, request: pb.GrantRoleRequest | pb.RevokeRoleRequest
    ) -> commands.ChangeRole:
        v = Violations()
        user_id = _parse(v, "user_id", request.user_id, _id)
        role = ROLE_FROM_PROTO.get(request.role)
        v.check(role is not None, "role", "must be a known role")
        v.raise_if_any()
        assert role is not None
        return commands.ChangeRole(user_id, role)

    def create_service_account(
        self, request: pb.CreateServiceAccountRequest
    ) -> commands.CreateServiceAccount:
        v = Violations()
        name = request.name.strip()
        if _capped(v, "name", name, MAX_NAME_LENGTH) and _required(v, "name", name):
            v.check(
                _NAME.fullmatch(name),
                "name",
                "may contain letters, digits, spaces, '.', '_' and '-'",
            )
        roles = _roles(v, "roles", request.roles, allowed=STAFF_ROLES)
        v.raise_if_any()
        return commands.CreateServiceAccount(name, roles)

    def get_user(self, request: pb.GetUserRequest) -> commands.GetUser:
        v = Violations()
        user_id = _parse(v, "user_id", request.user_id, _id)
        v.raise_if_any()
        return commands.GetUser(user_id)

    def _new_password(self, v: Violations, field: str, raw: str) -> str:
        if not _required(v, field, raw):
            return raw
        for problem in self._policy.problems(raw):
            v.add(field, problem)
        return raw


_SESSIONS_QUERY = "sessions"


def encode_cursor(cursor: commands.SessionCursor) -> str:
    return page_tokens.encode(
        {"t": cursor.created_at.isoformat(), "id": str(cursor.session_id)}, _SESSIONS_QUERY
    )


def decode_cursor(token: str) -> commands.SessionCursor:
    try:
        body = page_tokens.decode(token, _SESSIONS_QUERY)
        created_at = datetime.fromisoformat(body["t"])
        session_id = uuid.UUID(body["id"])
    except (page_tokens.BadPageToken, ValueError, KeyError, TypeError):
        raise values.InvalidValue("is not a page token from this service") from None
    if created_at.tzinfo is None:
        raise values.InvalidValue("is not a page token from this service")
    return commands.SessionCursor(created_at, session_id)


def _parse(v: Violations, field: str, raw: str, parser: Callable[[str], T]) -> T:
    """Run a value parser, recording its complaint under ``field``.

    On failure the returned value is a placeholder; callers raise before using it.
    """
    try:
        return parser(raw)
    except values.InvalidValue as exc:
        v.add(field, str(exc))
        return None  # type: ignore[return-value]


def _required(v: Violations, field: str, raw: str) -> bool:
    return v.check(raw.strip() != "", field, "is required")


def _capped(v: Violations, field: str, raw: str, limit: int) -> bool:
    return v.check(len(raw) <= limit, field, f"must be at most {limit} characters")


def _password(v: Violations, field: str, raw: str) -> str:
    """A password or secret being checked (not set): present and bounded."""
    if _required(v, field, raw):
        _capped(v, field, raw, MAX_PASSWORD_LENGTH)
    return raw


def _token(v: Violations, field: str, raw: str) -> str:
    token = raw.strip()
    if _required(v, field, token) and _capped(v, field, token, credentials.MAX_TOKEN_LENGTH):
        v.check(credentials.is_well_formed_token(token), field, "is not a token from this service")
    return token


def _totp_code(v: Violations, field: str, raw: str) -> str:
    code = totp.normalise_code(raw)
    if _required(v, field, code) and _capped(v, field, raw, MAX_CODE_LENGTH):
        v.check(totp.is_well_formed(code), field, f"must be {totp.DIGITS} digits")
    return code


def _recovery_code(v: Violations, field: str, raw: str) -> str:
    code = credentials.normalise_recovery_code(raw)
    if _required(v, field, code) and _capped(v, field, raw, MAX_RECOVERY_CODE_LENGTH):
        v.check(
            credentials.is_well_formed_recovery_code(code),
            field,
            "is not a recovery code from this service",
        )
    return code


def _id(raw: str) -> uuid.UUID:
    if not raw.strip():
        raise values.InvalidValue("is required")
    if len(raw) > 64:
        raise values.InvalidValue("must be a UUID")
    return values.parse_uuid(raw)


def _roles(
    v: Violations, field: str, raw: Iterable[int], *, allowed: frozenset[Role]
) -> frozenset[Role]:
    given = list(raw)
    if not v.check(given, field, "at least one role is required"):
        return frozenset()
    roles: set[Role] = set()
    names = ", ".join(sorted(role.value for role in allowed))
    for index, value in enumerate(given):
        role = ROLE_FROM_PROTO.get(value)
        if role is None:
            v.add(f"{field}[{index}]", "must be a known role")
        elif v.check(role in allowed, f"{field}[{index}]", f"must be one of: {names}"):
            roles.add(role)
    return frozenset(roles)
