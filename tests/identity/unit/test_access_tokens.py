"""Access tokens: exactly the contract's claims, verified by the platform's verifier."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from pipworks_identity.adapters.access_tokens import AccessTokenIssuer, SigningKeyError, SigningKeys
from pipworks_platform.auth import JwksCache, TokenVerifier

ISSUER, AUDIENCE = "pipworks-identity", "pipworks"


def seed() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def keys(*kids: str, active: str) -> SigningKeys:
    spec = ",".join(f"{kid}:{seed()}" for kid in kids)
    return SigningKeys.from_env_values(spec, active)


def issuer(signing: SigningKeys) -> AccessTokenIssuer:
    return AccessTokenIssuer(
        signing, issuer=ISSUER, audience=AUDIENCE, lifetime=timedelta(minutes=10)
    )


def verifier(signing: SigningKeys) -> TokenVerifier:
    async def fetch():
        return signing.jwks()

    return TokenVerifier(JwksCache(fetch), issuer=ISSUER, audience=AUDIENCE)


async def test_user_tokens_carry_the_contract_claims() -> None:
    signing = keys("k1", active="k1")
    now = datetime.now(UTC)
    token = issuer(signing).for_user(
        user_id="u-1", roles=["client", "ib"], aal=2, session_id="s-1", mfa_enabled=True, now=now
    )
    header = jwt.get_unverified_header(token.token)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert header == {"alg": "EdDSA", "kid": "k1", "typ": "JWT"}
    assert set(claims) == {
        "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "typ", "roles", "aal", "sid", "mfa"
    }  # fmt: skip
    assert claims["exp"] - claims["iat"] == 600
    assert token.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    principal = await verifier(signing).verify(token.token)
    assert (principal.subject, principal.kind, principal.aal, principal.session_id) == (
        "u-1",
        "user",
        2,
        "s-1",
    )
    assert principal.roles == frozenset({"client", "ib"})
    assert principal.mfa_enabled


async def test_service_tokens_have_no_session_and_aal2() -> None:
    signing = keys("k1", active="k1")
    token = issuer(signing).for_service(
        client_id="sa_x", roles=["compliance"], now=datetime.now(UTC)
    )
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert "sid" not in claims
    principal = await verifier(signing).verify(token.token)
    assert (principal.kind, principal.aal, principal.session_id) == ("service", 2, None)


async def test_tokens_of_a_rotated_out_key_still_verify_while_it_is_published() -> None:
    first, second = seed(), seed()
    before = SigningKeys.from_env_values(f"k1:{first}", "k1")
    after = SigningKeys.from_env_values(f"k2:{second},k1:{first}", "k2")
    token = issuer(before).for_service(client_id="sa_x", roles=["support"], now=datetime.now(UTC))
    assert [jwk["kid"] for jwk in after.jwks()] == ["k2", "k1"]
    assert (await verifier(after).verify(token.token)).subject == "sa_x"
    assert (
        jwt.get_unverified_header(
            issuer(after)
            .for_service(client_id="sa_x", roles=["support"], now=datetime.now(UTC))
            .token
        )["kid"]
        == "k2"
    )


def test_key_errors_never_echo_key_material() -> None:
    secret_looking = base64.b64encode(b"x" * 31).decode()
    with pytest.raises(SigningKeyError) as raised:
        SigningKeys.from_env_values(f"k1:{secret_looking}", "k1")
    assert secret_looking not in str(raised.value)
    with pytest.raises(SigningKeyError, match="repeats"):
        SigningKeys.from_env_values(f"k1:{seed()},k1:{seed()}", "k1")
