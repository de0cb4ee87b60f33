"""Sign-up, two-factor login and sessions, through the gateway over real sockets, and
the attacks the gateway and identity must refuse."""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pyotp
import pytest

from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc
from pipworks_platform.grpc_errors import ErrorDetails, error_details
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.tokens import TokenAuthority

PASSWORD = "plum-Orchard-sunrise-4417"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def refused(call, request, **kwargs) -> ErrorDetails:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=10, **kwargs)
    return error_details(raised.value)


def register(identity, password: str = PASSWORD) -> str:
    email = f"client-{uuid.uuid4().hex[:10]}@example.com"
    reply = identity.Register(
        pb.RegisterRequest(email=email, password=password, country_code="CY"), timeout=10
    )
    assert reply.user_id
    identity.VerifyEmail(pb.VerifyEmailRequest(token=reply.email_verification_token), timeout=10)
    return email


def login(identity, email: str, password: str = PASSWORD) -> pb.LoginResponse:
    return identity.Login(pb.LoginRequest(email=email, password=password), timeout=10)


def enable_totp(identity, access_token: str) -> tuple[pyotp.TOTP, list[str]]:
    enrolment = identity.EnrollTotp(
        pb.EnrollTotpRequest(), metadata=bearer(access_token), timeout=10
    )
    assert enrolment.qr_code.startswith(b"\x89PNG")
    assert enrolment.otpauth_uri.startswith("otpauth://totp/")
    totp = pyotp.parse_uri(enrolment.otpauth_uri)
    confirmed = identity.ConfirmTotp(
        pb.ConfirmTotpRequest(code=totp.now()), metadata=bearer(access_token), timeout=10
    )
    assert len(confirmed.recovery_codes) == 10
    return totp, list(confirmed.recovery_codes)


def next_step_code(totp: pyotp.TOTP) -> str:
    """A code for the next 30 s step: inside the ±1 step window, after the one just used."""
    return totp.at(time.time() + 30)


def claims(access_token: str) -> dict:
    return jwt.decode(access_token, options={"verify_signature": False})


def test_register_enrol_two_factor_login_refresh_logout(identity):
    email = register(identity)
    first = login(identity, email)
    assert first.tokens.access_token
    assert not first.mfa_challenge_token
    me = identity.GetCurrentUser(
        pb.GetCurrentUserRequest(), metadata=bearer(first.tokens.access_token), timeout=10
    ).user
    assert (me.email, me.email_verified, me.totp_enabled) == (email, True, False)

    totp, _codes = enable_totp(identity, first.tokens.access_token)

    challenged = login(identity, email)
    assert challenged.mfa_challenge_token
    assert not challenged.tokens.access_token
    session = identity.VerifyMfa(
        pb.VerifyMfaRequest(
            mfa_challenge_token=challenged.mfa_challenge_token, totp_code=next_step_code(totp)
        ),
        timeout=10,
    ).tokens
    granted = claims(session.access_token)
    assert (granted["aal"], granted["mfa"], granted["sid"]) == (2, True, session.session_id)

    renewed = identity.Refresh(
        pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10
    ).tokens
    assert renewed.refresh_token != session.refresh_token
    assert renewed.session_id == session.session_id
    assert claims(renewed.access_token)["aal"] == 2

    sessions = identity.ListSessions(
        pb.ListSessionsRequest(), metadata=bearer(renewed.access_token), timeout=10
    ).sessions
    assert session.session_id in {s.session_id for s in sessions}
    identity.Logout(pb.LogoutRequest(), metadata=bearer(renewed.access_token), timeout=10)
    details = refused(identity.Refresh, pb.RefreshRequest(refresh_token=renewed.refresh_token))
    assert details.code == grpc.StatusCode.UNAUTHENTICATED


def test_replayed_totp_code_and_reused_recovery_code_are_refused(identity):
    email = register(identity)
    totp, codes = enable_totp(identity, login(identity, email).tokens.access_token)
    code = next_step_code(totp)
    challenge = login(identity, email).mfa_challenge_token
    identity.VerifyMfa(pb.VerifyMfaRequest(mfa_challenge_token=challenge, totp_code=code))

    replay = login(identity, email).mfa_challenge_token
    details = refused(
        identity.VerifyMfa, pb.VerifyMfaRequest(mfa_challenge_token=replay, totp_code=code)
    )
    assert details.code == grpc.StatusCode.UNAUTHENTICATED

    recovery = login(identity, email).mfa_challenge_token
    tokens = identity.VerifyMfa(
        pb.VerifyMfaRequest(mfa_challenge_token=recovery, recovery_code=codes[0])
    ).tokens
    assert claims(tokens.access_token)["aal"] == 2
    again = login(identity, email).mfa_challenge_token
    details = refused(
        identity.VerifyMfa, pb.VerifyMfaRequest(mfa_challenge_token=again, recovery_code=codes[0])
    )
    assert details.code == grpc.StatusCode.UNAUTHENTICATED


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(identity):
    email = register(identity)
    original = login(identity, email).tokens
    rotated = identity.Refresh(pb.RefreshRequest(refresh_token=original.refresh_token)).tokens
    stolen = refused(identity.Refresh, pb.RefreshRequest(refresh_token=original.refresh_token))
    assert stolen.code == grpc.StatusCode.UNAUTHENTICATED
    # The legitimate holder's newer token died with the family.
    details = refused(identity.Refresh, pb.RefreshRequest(refresh_token=rotated.refresh_token))
    assert details.code == grpc.StatusCode.UNAUTHENTICATED


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_expired_and_foreign_tokens_are_refused_at_the_gateway(suite, identity):
    email = register(identity)
    genuine = login(identity, email).tokens.access_token
    real = claims(genuine)
    header = jwt.get_unverified_header(genuine)
    authority = suite.authority
    signature = genuine.split(".")[2]
    forgeries = {
        "no token": None,
        "expired": authority.mint(
            real["sub"], sid=real["sid"], exp=int(time.time()) - 60, iat=int(time.time()) - 700
        ),
        "signed by another key": TokenAuthority(kid=authority.kid).mint(
            real["sub"], sid=real["sid"]
        ),
        "alg none": f"{_b64({'alg': 'none', 'kid': authority.kid})}.{_b64(real)}.",
        "tampered roles": f"{_b64(header)}.{_b64({**real, 'roles': ['admin']})}.{signature}",
        "wrong audience": authority.mint(real["sub"], sid=real["sid"], aud="another-api"),
    }
    for name, token in forgeries.items():
        metadata = bearer(token) if token else None
        details = refused(identity.GetCurrentUser, pb.GetCurrentUserRequest(), metadata=metadata)
        assert details.code == grpc.StatusCode.UNAUTHENTICATED, name
    me = identity.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=bearer(genuine))
    assert me.user.email == email


def test_clients_cannot_reach_staff_methods(gateway_channel, identity):
    token = login(identity, register(identity)).tokens.access_token
    details = refused(
        identity.GrantRole,
        pb.GrantRoleRequest(user_id=claims(token)["sub"], role=pb.ROLE_ADMIN),
        metadata=bearer(token),
    )
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_ROLE")
    ib = ib_service_pb2_grpc.IbServiceStub(gateway_channel)
    details = refused(
        ib.GetServiceInfo, ib_service_pb2.GetServiceInfoRequest(), metadata=bearer(token)
    )
    assert details.code == grpc.StatusCode.PERMISSION_DENIED


def test_staff_need_two_factor_to_reach_a_backend_through_the_gateway(gateway_channel, identity):
    ib = ib_service_pb2_grpc.IbServiceStub(gateway_channel)
    password_only = login(identity, ADMIN_EMAIL, ADMIN_PASSWORD).tokens.access_token
    details = refused(
        ib.GetServiceInfo, ib_service_pb2.GetServiceInfoRequest(), metadata=bearer(password_only)
    )
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "AAL2_REQUIRED")

    totp, _ = enable_totp(identity, password_only)
    challenge = login(identity, ADMIN_EMAIL, ADMIN_PASSWORD).mfa_challenge_token
    staff = identity.VerifyMfa(
        pb.VerifyMfaRequest(mfa_challenge_token=challenge, totp_code=next_step_code(totp))
    ).tokens.access_token
    info = ib.GetServiceInfo(ib_service_pb2.GetServiceInfoRequest(), metadata=bearer(staff)).info
    assert info.name == "ib"  # the backend verified the same token against identity's keys


def test_backends_refuse_calls_that_bypass_the_gateway(suite):
    with grpc.insecure_channel(suite.direct("ib")) as channel:
        ib = ib_service_pb2_grpc.IbServiceStub(channel)
        details = refused(ib.GetServiceInfo, ib_service_pb2.GetServiceInfoRequest())
        assert details.code == grpc.StatusCode.UNAUTHENTICATED
        forged = TokenAuthority().metadata(roles=("admin",), aal=2)
        details = refused(
            ib.GetServiceInfo, ib_service_pb2.GetServiceInfoRequest(), metadata=forged
        )
        assert details.code == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(suite.direct("identity")) as channel:
        direct = identity_service_pb2_grpc.IdentityServiceStub(channel)
        details = refused(direct.GetCurrentUser, pb.GetCurrentUserRequest())
        assert details.code == grpc.StatusCode.UNAUTHENTICATED


def test_unknown_email_and_wrong_password_look_the_same(identity):
    email = register(identity)
    unknown = refused(
        identity.Login, pb.LoginRequest(email="nobody@example.com", password=PASSWORD)
    )
    wrong = refused(identity.Login, pb.LoginRequest(email=email, password=PASSWORD + "x"))
    assert (unknown.code, unknown.reason, unknown.message) == (
        wrong.code,
        wrong.reason,
        wrong.message,
    )


def test_brute_force_locks_the_account(identity):
    email = register(identity)
    for _ in range(5):
        details = refused(identity.Login, pb.LoginRequest(email=email, password="wrong-" * 3))
        assert details.reason == "INVALID_CREDENTIALS"
    locked = refused(identity.Login, pb.LoginRequest(email=email, password=PASSWORD))
    assert (locked.code, locked.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ACCOUNT_LOCKED")
    assert locked.retry_after is not None


def test_parallel_brute_force_evaluates_at_most_the_limit(identity):
    email = register(identity)

    def guess(attempt: int) -> str:
        try:
            login(identity, email, f"guess-number-{attempt:04d}-x")
        except grpc.RpcError as exc:
            return error_details(exc).reason
        return "ACCEPTED"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(guess, range(50)))
    assert "ACCEPTED" not in outcomes
    assert outcomes.count("INVALID_CREDENTIALS") <= 5
    assert set(outcomes) <= {"INVALID_CREDENTIALS", "ACCOUNT_LOCKED", "RATE_LIMITED"}
    locked = refused(identity.Login, pb.LoginRequest(email=email, password=PASSWORD))
    assert locked.reason == "ACCOUNT_LOCKED"
