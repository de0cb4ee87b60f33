"""Access-token verification: EdDSA only, issuer, audience, expiry, key id from the JWKS.

The algorithm is pinned before any key is looked up, so ``alg: none``, HS256 signed
with the public key (key confusion) and RSA tokens are refused outright.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt

from pipworks_platform.auth.jwks import JwksCache, JwksUnavailable
from pipworks_platform.auth.principal import SERVICE, USER, Principal
from pipworks_platform.errors import Unauthenticated, Unavailable

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")


def _invalid(message: str = "invalid access token") -> Unauthenticated:
    return Unauthenticated(message, reason="TOKEN_INVALID")


class TokenVerifier:
    """Verifies access tokens; remembers verified ones until they expire.

    A token is immutable, so once its signature and claims check out the result holds
    until ``exp``; the bounded cache spares the signature check on every call a client
    makes with the same token (the gateway and each backend verify every call).
    """

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_size = cache_size
        self._verified: OrderedDict[str, Principal] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at.timestamp() > time.time():
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        principal = await self._verify(token)
        self._verified[token] = principal
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid() from None
        if header.get("alg") != ALGORITHM:
            raise _invalid("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("token has no key id")
        try:
            key = await self._jwks.get(kid)
        except JwksUnavailable:
            raise Unavailable(
                "token keys are unavailable; retry", reason="JWKS_UNAVAILABLE"
            ) from None
        if key is None:
            raise _invalid("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise _invalid() from None
        return _principal(claims)


def _principal(claims: Mapping[str, Any]) -> Principal:
    kind = claims.get("typ", USER)
    roles = claims.get("roles", [])
    aal = claims.get("aal", 1)
    sid = claims.get("sid")
    if kind not in (USER, SERVICE) or not isinstance(roles, list):
        raise _invalid()
    if not all(isinstance(r, str) for r in roles) or aal not in (1, 2):
        raise _invalid()
    if sid is not None and not isinstance(sid, str):
        raise _invalid()
    if kind == USER and not sid:
        raise _invalid("user token without a session")
    return Principal(
        subject=str(claims["sub"]),
        kind=kind,
        roles=frozenset(roles),
        aal=aal,
        session_id=sid,
        mfa_enabled=bool(claims.get("mfa", False)),
        token_id=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
