"""Second factors: a TOTP code works once per time step, a recovery code works once."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from pipworks.events.v1 import identity_pb2
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.identity.support import (
    PASSWORD,
    bearer,
    code_at,
    enable_totp,
    fresh_step,
    login_tokens,
    register,
)

EMAIL = "mfa.user@example.com"


async def _challenge(stub) -> str:
    reply = await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))
    assert reply.mfa_challenge_token
    return reply.mfa_challenge_token


async def _refused(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    return details.reason


async def _enrolled(identity, step: int) -> tuple[str, list[str]]:
    await register(identity.stub, EMAIL)
    tokens = await login_tokens(identity.stub, EMAIL)
    return await enable_totp(identity.stub, tokens.access_token, step)


async def test_a_replayed_totp_code_is_refused(identity):
    stub = identity.stub
    step = await fresh_step()
    secret, _ = await _enrolled(identity, step)
    code = code_at(secret, step)
    await stub.VerifyMfa(
        pb.VerifyMfaRequest(mfa_challenge_token=await _challenge(stub), totp_code=code)
    )

    replay = pb.VerifyMfaRequest(mfa_challenge_token=await _challenge(stub), totp_code=code)
    assert await _refused(stub.VerifyMfa(replay)) == "INVALID_CREDENTIALS"
    # Nor does an older code inside the drift window pass once a newer one was used.
    older = pb.VerifyMfaRequest(
        mfa_challenge_token=await _challenge(stub), totp_code=code_at(secret, step - 1)
    )
    assert await _refused(stub.VerifyMfa(older)) == "INVALID_CREDENTIALS"
    failures = await identity.events("LoginFailed")
    assert [f.reason for f in failures] == [pb_reason("BAD_SECOND_FACTOR")] * 2

    # The next step's code is fresh, and the challenge it completes is spent.
    challenge = await _challenge(stub)
    fresh = pb.VerifyMfaRequest(mfa_challenge_token=challenge, totp_code=code_at(secret, step + 1))
    assert (await stub.VerifyMfa(fresh)).tokens.access_token
    assert await _refused(stub.VerifyMfa(fresh)) == "MFA_CHALLENGE_INVALID"


async def test_a_recovery_code_works_exactly_once(identity):
    stub = identity.stub
    step = await fresh_step()
    _, codes = await _enrolled(identity, step)

    used = codes[3].upper().replace("-", " ")  # as someone might type it off paper
    request = pb.VerifyMfaRequest(mfa_challenge_token=await _challenge(stub), recovery_code=used)
    tokens = (await stub.VerifyMfa(request)).tokens
    me = await stub.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=bearer(tokens.access_token))
    assert me.user.totp_enabled

    again = pb.VerifyMfaRequest(mfa_challenge_token=await _challenge(stub), recovery_code=codes[3])
    assert await _refused(stub.VerifyMfa(again)) == "INVALID_CREDENTIALS"
    assert [f.reason for f in await identity.events("LoginFailed")] == [
        pb_reason("BAD_RECOVERY_CODE")
    ]
    other = pb.VerifyMfaRequest(mfa_challenge_token=await _challenge(stub), recovery_code=codes[4])
    assert (await stub.VerifyMfa(other)).tokens.access_token
    assert await identity.scalar("SELECT count(*) FROM recovery_codes WHERE used_at IS NULL") == 8


async def test_disabling_totp_needs_password_and_a_fresh_code_at_aal2(identity):
    stub = identity.stub
    step = await fresh_step()
    secret, _ = await _enrolled(identity, step)
    challenge = await _challenge(stub)
    verified = await stub.VerifyMfa(
        pb.VerifyMfaRequest(mfa_challenge_token=challenge, totp_code=code_at(secret, step))
    )
    auth = bearer(verified.tokens.access_token)

    wrong_password = pb.DisableTotpRequest(
        password="wrong-password-1", code=code_at(secret, step + 1)
    )
    assert await _refused(stub.DisableTotp(wrong_password, metadata=auth)) == "INVALID_CREDENTIALS"
    replayed = pb.DisableTotpRequest(password=PASSWORD, code=code_at(secret, step))
    assert await _refused(stub.DisableTotp(replayed, metadata=auth)) == "INVALID_CREDENTIALS"
    await stub.DisableTotp(
        pb.DisableTotpRequest(password=PASSWORD, code=code_at(secret, step + 1)), metadata=auth
    )

    assert not (
        await stub.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=auth)
    ).user.totp_enabled
    assert await identity.scalar("SELECT count(*) FROM recovery_codes") == 0
    assert len(await identity.events("TwoFactorDisabled")) == 1
    reply = await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))
    assert reply.HasField("tokens")  # one step again


async def test_totp_policies_are_enforced_by_the_platform(identity):
    stub = identity.stub
    step = await fresh_step()
    await _enrolled(identity, step)
    # An aal1 token of a user with TOTP on (the claim says mfa) cannot change credentials.
    user_id = await identity.scalar("SELECT id::text FROM users WHERE email = $1", EMAIL)
    session_id = await identity.scalar("SELECT id::text FROM sessions LIMIT 1")
    aal1 = identity.deps.tokens.for_user(
        user_id=user_id,
        roles=["client"],
        aal=1,
        session_id=session_id,
        mfa_enabled=True,
        now=datetime.now(UTC),
    ).token
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=bearer(aal1))
    details = error_details(raised.value)
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "AAL2_REQUIRED")


async def test_confirming_needs_an_enrolment_and_a_matching_code(identity):
    stub = identity.stub
    await register(identity.stub, EMAIL)
    auth = bearer((await login_tokens(stub, EMAIL)).access_token)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConfirmTotp(pb.ConfirmTotpRequest(code="123456"), metadata=auth)
    assert error_details(raised.value).reason == "TOTP_NOT_ENROLLED"
    await stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConfirmTotp(pb.ConfirmTotpRequest(code="000000"), metadata=auth)
    details = error_details(raised.value)
    assert (details.code, details.field_violations[0][0]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "code",
    )
    assert (
        await identity.scalar("SELECT totp_enabled_at FROM users WHERE email = $1", EMAIL) is None
    )


def pb_reason(name: str) -> int:
    return identity_pb2.LoginFailureReason.Value(f"LOGIN_FAILURE_REASON_{name}")
