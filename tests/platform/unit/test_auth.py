"""Token verification refuses every forgery it should; policies come from the protos."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipworks_platform.auth import (
    JwksCache,
    JwksUnavailable,
    Policy,
    TokenVerifier,
    authorize,
    bearer_token,
    policy_for,
)
from pipworks_platform.errors import PermissionDenied, Unauthenticated, Unavailable
from tests.tokens import AUDIENCE, ISSUER, TokenAuthority


class CountingFetch:
    def __init__(self, keys) -> None:
        self.keys = keys
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if isinstance(self.keys, Exception):
            raise self.keys
        return self.keys


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority()


def verifier_for(fetch, **kwargs) -> TokenVerifier:
    return TokenVerifier(JwksCache(fetch, **kwargs), issuer=ISSUER, audience=AUDIENCE, leeway=0)


async def test_a_valid_token_gives_its_principal(authority):
    token = authority.mint("u-7", roles=("client", "ib"), aal=2, mfa=True)
    principal = await verifier_for(CountingFetch(authority.jwks())).verify(token)
    assert principal.subject == "u-7"
    assert principal.roles == frozenset({"client", "ib"})
    assert principal.aal == 2
    assert principal.mfa_enabled
    assert principal.session_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    )


async def test_forged_and_foreign_tokens_are_refused(authority):
    verifier = verifier_for(CountingFetch(authority.jwks()))
    good = authority.mint()
    claims = jwt.decode(good, options={"verify_signature": False})
    public_raw = authority.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    forgeries = {
        "alg none": _forge({"alg": "none", "kid": authority.kid}, claims),
        "hs256 with the public key": jwt.encode(
            claims, public_raw, algorithm="HS256", headers={"kid": authority.kid}
        ),
        "tampered roles": _forge(
            jwt.get_unverified_header(good),
            {**claims, "roles": ["admin"]},
            base64.urlsafe_b64decode(good.split(".")[2] + "=="),
        ),
        "another key, same kid": TokenAuthority(kid=authority.kid).mint(),
        "unknown kid": TokenAuthority().mint(),
        "wrong audience": authority.mint(aud="someone-else"),
        "wrong issuer": authority.mint(iss="evil-identity"),
        "no expiry": authority.mint(exp=None),
        "no session on a user token": authority.mint(sid=None),
        "bad aal": authority.mint(aal=3),
        "garbage": "not.a.token",
    }
    for name, token in forgeries.items():
        with pytest.raises(Unauthenticated) as raised:
            await verifier.verify(token)
        assert raised.value.reason == "TOKEN_INVALID", name


async def test_an_expired_token_says_so(authority):
    token = authority.mint(exp=int(time.time()) - 5)
    with pytest.raises(Unauthenticated) as raised:
        await verifier_for(CountingFetch(authority.jwks())).verify(token)
    assert raised.value.reason == "TOKEN_EXPIRED"


async def test_unknown_kids_do_not_refetch_within_the_refresh_interval(authority):
    rotated = TokenAuthority()
    fetch = CountingFetch(authority.jwks())
    verifier = verifier_for(fetch, min_refresh_seconds=60)
    await verifier.verify(authority.mint())
    assert fetch.calls == 1
    fetch.keys = authority.jwks() + rotated.jwks()  # identity rotated its key
    with pytest.raises(Unauthenticated):
        await verifier.verify(rotated.mint())
    assert fetch.calls == 1  # unknown kids do not refetch within the interval


async def test_rotation_is_picked_up_after_the_refresh_interval(authority):
    rotated = TokenAuthority()
    fetch = CountingFetch(authority.jwks())
    verifier = verifier_for(fetch, min_refresh_seconds=0)
    await verifier.verify(authority.mint())
    fetch.keys = authority.jwks() + rotated.jwks()
    assert (await verifier.verify(rotated.mint())).subject == "user-1"
    assert fetch.calls == 2
    for _ in range(5):  # garbage kids cannot hammer identity beyond one fetch each
        with pytest.raises(Unauthenticated):
            await verifier.verify(TokenAuthority().mint())


async def test_keys_unreachable_is_unavailable_not_unauthenticated(authority):
    verifier = verifier_for(CountingFetch(ConnectionError("identity down")))
    with pytest.raises(Unavailable) as raised:
        await verifier.verify(authority.mint())
    assert raised.value.reason == "JWKS_UNAVAILABLE"


async def test_known_keys_survive_an_identity_outage(authority):
    fetch = CountingFetch(authority.jwks())
    cache = JwksCache(fetch, min_refresh_seconds=0, max_age_seconds=0)
    assert await cache.get(authority.kid) is not None
    fetch.keys = ConnectionError("identity down")
    assert await cache.get(authority.kid) is not None
    with pytest.raises(JwksUnavailable):
        await JwksCache(fetch).get(authority.kid)


def test_policies_are_read_from_the_proto_options():
    login = policy_for("/pipworks.identity.v1.IdentityService/Login")
    assert login == Policy(public=True, rate_limit_class="auth")
    grant = policy_for("/pipworks.identity.v1.IdentityService/GrantRole")
    assert grant.roles == frozenset({"admin"})
    assert grant.require_aal2
    assert policy_for("/grpc.health.v1.Health/Check").public
    assert policy_for("/pipworks.identity.v1.IdentityService/NoSuchMethod") is None
    assert policy_for("/no.such.Service/Method") is None
    assert policy_for("garbage") is None


def _principal(authority, **claims):
    import asyncio

    token = authority.mint(**claims)
    return asyncio.run(verifier_for(CountingFetch(authority.jwks())).verify(token))


def test_authorize_checks_roles_then_assurance(authority):
    staff = Policy(roles=frozenset({"admin"}), require_aal2=True)
    with pytest.raises(PermissionDenied) as raised:
        authorize(_principal(authority, roles=("client",), aal=2), staff)
    assert raised.value.reason == "MISSING_ROLE"
    with pytest.raises(PermissionDenied) as raised:
        authorize(_principal(authority, roles=("admin",), aal=1), staff)
    assert raised.value.reason == "AAL2_REQUIRED"
    authorize(_principal(authority, roles=("admin",), aal=2), staff)

    credentials = Policy(require_aal2_if_enrolled=True)
    authorize(_principal(authority, aal=1, mfa=False), credentials)
    with pytest.raises(PermissionDenied):
        authorize(_principal(authority, aal=1, mfa=True), credentials)


def test_bearer_token_parsing():
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("Authorization", "bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) is None
    assert bearer_token([("x-other", "Bearer abc")]) is None
    assert bearer_token(None) is None


async def test_verified_tokens_are_remembered_until_they_expire(authority, monkeypatch):
    verifier = verifier_for(CountingFetch(authority.jwks()))
    lookups = []
    real_get = verifier._jwks.get

    async def counting_get(kid):
        lookups.append(kid)
        return await real_get(kid)

    monkeypatch.setattr(verifier._jwks, "get", counting_get)
    token = authority.mint(ttl=60)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    assert len(lookups) == 1  # the second call skipped the signature check
    later = time.time() + 120
    monkeypatch.setattr("pipworks_platform.auth.tokens.time.time", lambda: later)
    await verifier.verify(token)
    assert len(lookups) == 2  # past its expiry the entry is not trusted any more
