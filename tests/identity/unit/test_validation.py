"""Request validation: every bad field named at once, every string capped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_identity.commands import SessionCursor
from pipworks_identity.domain.passwords import PasswordPolicy
from pipworks_identity.domain.roles import Role
from pipworks_identity.validation import RequestParser, decode_cursor, encode_cursor
from pipworks_platform.errors import InvalidArgument

parse = RequestParser(PasswordPolicy())


def fields(exc: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in exc.value.violations]


def test_register_reports_every_bad_field() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse.register(
            pb.RegisterRequest(
                email="nope",
                password="short",
                country_code="XX",
                phone="12",
                referral_code="bad code",
            )
        )
    assert fields(raised) == ["email", "password", "country_code", "phone", "referral_code"]


def test_register_normalises() -> None:
    cmd = parse.register(
        pb.RegisterRequest(
            email=" Ann@Example.com ",
            password="violet-harbour-lantern-42",
            country_code="gb",
            phone="+44 20 7946 0958",
        )
    )
    assert (cmd.email, cmd.country_code, cmd.phone, cmd.referral_code) == (
        "ann@example.com",
        "GB",
        "+442079460958",
        None,
    )


@pytest.mark.parametrize(
    ("request_", "method", "field"),
    [
        (pb.LoginRequest(email="a@b.example", password=""), "login", "password"),
        (pb.LoginRequest(email="a@b.example", password="p" * 300), "login", "password"),
        (pb.VerifyEmailRequest(token=""), "verify_email", "token"),
        (pb.VerifyEmailRequest(token="x" * 300), "verify_email", "token"),
        (pb.VerifyEmailRequest(token="not a token!"), "verify_email", "token"),
        (pb.RefreshRequest(refresh_token=""), "refresh", "refresh_token"),
        (pb.ConfirmTotpRequest(code="12a456"), "confirm_totp", "code"),
        (pb.ConfirmTotpRequest(code="1" * 40), "confirm_totp", "code"),
        (pb.VerifyMfaRequest(mfa_challenge_token="t" * 43), "verify_mfa", "totp_code"),
        (
            pb.VerifyMfaRequest(mfa_challenge_token="t" * 43, recovery_code="nope"),
            "verify_mfa",
            "recovery_code",
        ),
        (pb.RevokeSessionRequest(session_id="42"), "revoke_session", "session_id"),
        (pb.GetUserRequest(user_id=""), "get_user", "user_id"),
        (pb.GrantRoleRequest(user_id=str(uuid.uuid4())), "change_role", "role"),
        (pb.GrantRoleRequest(user_id=str(uuid.uuid4()), role=99), "change_role", "role"),
        (pb.CreateServiceAccountRequest(name="ok", roles=[]), "create_service_account", "roles"),
        (
            pb.CreateServiceAccountRequest(name="n" * 65, roles=[pb.ROLE_SUPPORT]),
            "create_service_account",
            "name",
        ),
        (
            pb.AuthenticateServiceAccountRequest(client_id="x", client_secret="s"),
            "authenticate_service_account",
            "client_id",
        ),
        (
            pb.ListSessionsRequest(page={"page_token": "garbage"}),
            "list_sessions",
            "page.page_token",
        ),
        (pb.ListSessionsRequest(page={"page_size": -1}), "list_sessions", "page.page_size"),
        (
            pb.ChangePasswordRequest(current_password="x", new_password="password"),
            "change_password",
            "new_password",
        ),
    ],
)
def test_bad_fields_are_named(request_, method: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        getattr(parse, method)(request_)
    assert field in fields(raised)


def test_unknown_roles_are_named_by_index() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse.create_staff_user(
            pb.CreateStaffUserRequest(
                email="s@broker.example",
                password="violet-harbour-lantern-42",
                roles=[pb.ROLE_SUPPORT, 0],
                country_code="CY",
            )
        )
    assert fields(raised) == ["roles[1]"]


def test_staff_accounts_take_staff_roles_only() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse.create_service_account(
            pb.CreateServiceAccountRequest(name="bot", roles=[pb.ROLE_SUPPORT, pb.ROLE_CLIENT])
        )
    assert fields(raised) == ["roles[1]"]
    assert "admin, compliance, dealer, support" in raised.value.violations[0].description


def test_roles_and_pages_parse() -> None:
    cmd = parse.create_service_account(
        pb.CreateServiceAccountRequest(name="compliance-tool", roles=[pb.ROLE_COMPLIANCE] * 2)
    )
    assert cmd.roles == frozenset({Role.COMPLIANCE})
    assert parse.list_sessions(pb.ListSessionsRequest()).page_size == 20
    assert parse.list_sessions(pb.ListSessionsRequest(page={"page_size": 5000})).page_size == 100


def test_page_tokens_round_trip() -> None:
    cursor = SessionCursor(datetime(2026, 11, 25, 12, 0, 0, 5, tzinfo=UTC), uuid.uuid4())
    assert decode_cursor(encode_cursor(cursor)) == cursor
