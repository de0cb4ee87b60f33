"""Bad input over the wire: INVALID_ARGUMENT naming each field, and nothing written."""

from __future__ import annotations

import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.identity.support import PASSWORD, bearer, login_tokens, register

TABLES = (
    "users",
    "sessions",
    "refresh_tokens",
    "one_time_tokens",
    "mfa_challenges",
    "outbox_events",
    "audit_log",
    "ip_throttle",
)


async def _snapshot(identity) -> dict[str, int]:
    return {t: await identity.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608


PUBLIC_CASES = [
    (
        "Register",
        pb.RegisterRequest(email="not-an-email", password=PASSWORD, country_code="CY"),
        ["email"],
    ),
    (
        "Register",
        pb.RegisterRequest(email="a@b.example", password="password1234", country_code="CY"),
        ["password"],
    ),
    (
        "Register",
        pb.RegisterRequest(email="a@b.example", password=PASSWORD, country_code="UK"),
        ["country_code"],
    ),
    (
        "Register",
        pb.RegisterRequest(
            email="a" * 5000 + "@b.example",
            password="p" * 5000,
            country_code="",
            phone="+1" + "2" * 100,
            referral_code="r" * 100,
        ),
        ["email", "password", "country_code", "phone", "referral_code"],
    ),
    ("Login", pb.LoginRequest(email="", password=""), ["email", "password"]),
    ("VerifyEmail", pb.VerifyEmailRequest(token=""), ["token"]),
    ("VerifyMfa", pb.VerifyMfaRequest(mfa_challenge_token="t" * 43), ["totp_code"]),
    ("Refresh", pb.RefreshRequest(refresh_token="x" * 10_000), ["refresh_token"]),
    ("RequestPasswordReset", pb.RequestPasswordResetRequest(email="@"), ["email"]),
    (
        "ResetPassword",
        pb.ResetPasswordRequest(token="t" * 43, new_password="short"),
        ["new_password"],
    ),
    (
        "AuthenticateServiceAccount",
        pb.AuthenticateServiceAccountRequest(client_id="", client_secret=""),
        ["client_id", "client_secret"],
    ),
]


@pytest.mark.parametrize(("method", "request_", "fields"), PUBLIC_CASES)
async def test_public_calls_refuse_bad_fields_and_write_nothing(identity, method, request_, fields):
    before = await _snapshot(identity)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(identity.stub, method)(request_)
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in details.field_violations] == fields
    assert await _snapshot(identity) == before


async def test_authenticated_calls_refuse_bad_fields_and_write_nothing(identity):
    await register(identity.stub, "ann@example.com")
    auth = bearer((await login_tokens(identity.stub, "ann@example.com")).access_token)
    same = pb.ChangePasswordRequest(current_password=PASSWORD, new_password=PASSWORD)
    weak = pb.ChangePasswordRequest(current_password="", new_password="abcabcabcabc")
    cases = [
        ("ChangePassword", same, ["new_password"]),
        ("ChangePassword", weak, ["current_password", "new_password"]),
        ("ConfirmTotp", pb.ConfirmTotpRequest(code="abc"), ["code"]),
        ("RevokeSession", pb.RevokeSessionRequest(session_id="not-a-uuid"), ["session_id"]),
        ("ListSessions", pb.ListSessionsRequest(page={"page_token": "%%%"}), ["page.page_token"]),
    ]
    for method, request_, fields in cases:
        before = await _snapshot(identity)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await getattr(identity.stub, method)(request_, metadata=auth)
        details = error_details(raised.value)
        assert (method, details.code) == (method, grpc.StatusCode.INVALID_ARGUMENT)
        assert [field for field, _ in details.field_violations] == fields
        assert await _snapshot(identity) == before


async def test_duplicate_registration_is_already_exists(identity):
    await register(identity.stub, "ann@example.com")
    before = await _snapshot(identity)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await register(identity.stub, "ANN@example.com")
    details = error_details(raised.value)
    assert (details.code, details.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
    after = await _snapshot(identity)
    assert {k: v for k, v in after.items() if k != "ip_throttle"} == {
        k: v for k, v in before.items() if k != "ip_throttle"
    }
