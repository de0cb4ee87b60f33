"""The golden path over real gRPC sockets, PostgreSQL and NATS: register, verify the
email, turn TOTP on, log in with the second factor, refresh, log out, and the events on
NATS that the other services consume."""

from __future__ import annotations

import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.auth import JwksCache, TokenVerifier
from pipworks_platform.grpc_errors import error_details
from tests.helpers import eventually
from tests.identity.support import (
    PASSWORD,
    bearer,
    code_at,
    fresh_step,
    register,
    running_identity,
    secret_of,
)

EMAIL = "ann.client@example.com"


@pytest.fixture
async def identity_with_relay(database_url, nats_url):
    async with running_identity(
        database_url, nats_url, relay=True, environment="development"
    ) as running:
        yield running


async def test_register_verify_enrol_login_with_mfa_refresh_logout(identity_with_relay):
    identity = identity_with_relay
    stub = identity.stub

    registered = await register(stub, "Ann.Client@Example.com", referral_code="IB-7")
    assert registered.email_verification_token  # development mode hands it back
    await stub.VerifyEmail(pb.VerifyEmailRequest(token=registered.email_verification_token))

    first = await stub.Login(
        pb.LoginRequest(email=EMAIL, password=PASSWORD),
        metadata=(  # as the gateway forwards them
            ("x-forwarded-user-agent", "portal/1.0"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
        ),
    )
    assert first.HasField("tokens")
    assert not first.mfa_challenge_token
    auth = bearer(first.tokens.access_token)
    me = (await stub.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=auth)).user
    assert (me.email, me.email_verified, me.country_code, list(me.roles)) == (
        EMAIL,
        True,
        "CY",
        [pb.ROLE_CLIENT],
    )

    step = await fresh_step()
    enrollment = await stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=auth)
    assert enrollment.otpauth_uri.startswith("otpauth://totp/Pipworks:")
    assert enrollment.qr_code.startswith(b"\x89PNG")
    assert enrollment.qr_code_media_type == "image/png"
    secret = secret_of(enrollment.otpauth_uri)
    assert secret == enrollment.secret
    confirmed = await stub.ConfirmTotp(
        pb.ConfirmTotpRequest(code=code_at(secret, step - 1)), metadata=auth
    )
    assert len(confirmed.recovery_codes) == 10 == len(set(confirmed.recovery_codes))

    challenge = await stub.Login(
        pb.LoginRequest(email=EMAIL, password=PASSWORD), metadata=(("x-device-id", "ios-42"),)
    )
    assert challenge.mfa_challenge_token
    assert not challenge.HasField("tokens")
    assert challenge.HasField("mfa_challenge_expires_at")
    verified = await stub.VerifyMfa(
        pb.VerifyMfaRequest(
            mfa_challenge_token=challenge.mfa_challenge_token, totp_code=code_at(secret, step)
        ),
        metadata=(("x-device-id", "ios-42"),),
    )
    tokens = verified.tokens
    principal = await _verify(identity, tokens.access_token)
    assert (principal.aal, principal.mfa_enabled, principal.session_id) == (
        2,
        True,
        tokens.session_id,
    )

    refreshed = (await stub.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token))).tokens
    assert refreshed.session_id == tokens.session_id
    assert refreshed.refresh_token != tokens.refresh_token
    assert (await _verify(identity, refreshed.access_token)).aal == 2

    sessions = await stub.ListSessions(
        pb.ListSessionsRequest(), metadata=bearer(refreshed.access_token)
    )
    assert {(s.session_id, s.aal, s.current) for s in sessions.sessions} == {
        (first.tokens.session_id, 1, False),
        (tokens.session_id, 2, True),
    }

    await stub.Logout(pb.LogoutRequest(), metadata=bearer(refreshed.access_token))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Refresh(pb.RefreshRequest(refresh_token=refreshed.refresh_token))
    assert error_details(raised.value).code == grpc.StatusCode.UNAUTHENTICATED

    assert await _published(identity, expected=6) == [
        "pipworks.identity.v1.user.registered",
        "pipworks.identity.v1.email_verification.requested",
        "pipworks.identity.v1.user.email_verified",
        "pipworks.identity.v1.login.succeeded",
        "pipworks.identity.v1.twofactor.enabled",
        "pipworks.identity.v1.login.succeeded",
    ]
    registered_event = (await identity.events("UserRegistered"))[0]
    assert (registered_event.country_code, registered_event.referral_code) == ("CY", "IB-7")
    logins = await identity.events("LoginSucceeded")
    assert (logins[0].ip_address, logins[0].user_agent, logins[0].aal) == (
        "203.0.113.9",
        "portal/1.0",
        1,
    )
    assert (logins[1].device_id, logins[1].aal, logins[1].ip_address) == ("ios-42", 2, "127.0.0.1")


async def test_production_never_returns_the_verification_token(identity):
    registered = await register(identity.stub, "bob@example.com")
    assert registered.email_verification_token == ""
    requested = await identity.events("EmailVerificationRequested")
    assert [e.email for e in requested] == ["root@broker.example", "bob@example.com"]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.VerifyEmail(pb.VerifyEmailRequest(token="x" * 43))
    assert error_details(raised.value).reason == "TOKEN_INVALID"
    # The token from the notifier's event works, once.
    token = requested[-1].token
    await identity.stub.VerifyEmail(pb.VerifyEmailRequest(token=token))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.VerifyEmail(pb.VerifyEmailRequest(token=token))
    assert error_details(raised.value).code == grpc.StatusCode.UNAUTHENTICATED


async def _verify(identity, token: str):
    async def fetch():
        return identity.deps.tokens.keys.jwks()

    jwks = (await identity.stub.GetJwks(pb.GetJwksRequest())).keys
    assert [(k.kty, k.crv, k.alg, k.use) for k in jwks] == [("OKP", "Ed25519", "EdDSA", "sig")]
    return await TokenVerifier(
        JwksCache(fetch), issuer="pipworks-identity", audience="pipworks"
    ).verify(token)


async def _published(identity, *, expected: int) -> list[str]:
    """Subjects in the identity stream, in order, once the relay has sent ``expected``."""
    js = identity.nats.jetstream()

    async def count() -> int:
        return (await js.stream_info("PIPWORKS_IDENTITY")).state.messages

    await eventually(count, until=lambda n: n >= expected)
    sub = await js.pull_subscribe(
        "pipworks.identity.>", stream="PIPWORKS_IDENTITY", config=None, durable=None
    )
    return [message.subject for message in await sub.fetch(expected, timeout=5)]
