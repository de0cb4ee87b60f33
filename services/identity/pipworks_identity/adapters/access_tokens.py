"""Access tokens: JWTs signed with Ed25519 (EdDSA), and the JWK set that verifies them.

Signing keys come from ``PIPWORKS_IDENTITY_SIGNING_KEYS`` as ``kid:<base64 seed>`` entries
(32-byte Ed25519 private seeds). New tokens are signed with the active key; the JWK set
publishes every configured key, so tokens signed before a rotation stay verifiable until
they expire, as long as the old key is kept in the list.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipworks_platform.auth import ALGORITHM, SERVICE, USER, jwk_from_public_key

SEED_SIZE = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class SigningKeyError(ValueError):
    """The signing key configuration is invalid; messages never contain key material."""


class SigningKeys:
    """Named Ed25519 private keys and the id of the one that signs new tokens."""

    __slots__ = ("_active", "_jwks", "_keys")

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey], active: str) -> None:
        if not keys:
            raise SigningKeyError("at least one signing key is required")
        if active not in keys:
            raise SigningKeyError(
                f"the active signing key {active!r} is not one of the configured key ids "
                f"({', '.join(keys)})"
            )
        self._keys = dict(keys)
        self._active = active
        ordered = [active, *(kid for kid in keys if kid != active)]
        self._jwks = [jwk_from_public_key(kid, keys[kid].public_key()) for kid in ordered]

    @classmethod
    def from_env_values(cls, spec: str, active: str) -> SigningKeys:
        """``PIPWORKS_IDENTITY_SIGNING_KEYS`` and ``PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY``."""
        return cls(parse_signing_keys(spec), active.strip())

    @property
    def active_id(self) -> str:
        return self._active

    def active_key(self) -> Ed25519PrivateKey:
        return self._keys[self._active]

    def jwks(self) -> list[dict[str, str]]:
        """Public JWKs of every configured key, the active one first."""
        return [dict(jwk) for jwk in self._jwks]

    def __repr__(self) -> str:
        return f"SigningKeys(ids={list(self._keys)}, active={self._active!r})"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime


class AccessTokenIssuer:
    """Mints the tokens every Pipworks service verifies (see the platform auth contract)."""

    def __init__(
        self, keys: SigningKeys, *, issuer: str, audience: str, lifetime: timedelta
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime

    @property
    def keys(self) -> SigningKeys:
        return self._keys

    def for_user(
        self,
        *,
        user_id: str,
        roles: list[str],
        aal: int,
        session_id: str,
        mfa_enabled: bool,
        now: datetime,
    ) -> AccessToken:
        return self._sign(
            {
                "sub": user_id,
                "typ": USER,
                "roles": roles,
                "aal": aal,
                "sid": session_id,
                "mfa": mfa_enabled,
            },
            now,
        )

    def for_service(self, *, client_id: str, roles: list[str], now: datetime) -> AccessToken:
        """Client-credentials tokens: no session, and aal 2 (a secret is not a password)."""
        return self._sign(
            {"sub": client_id, "typ": SERVICE, "roles": roles, "aal": 2, "mfa": False}, now
        )

    def _sign(self, claims: dict[str, object], now: datetime) -> AccessToken:
        issued = int(now.timestamp())
        expires = issued + int(self._lifetime.total_seconds())
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued,
            "nbf": issued,
            "exp": expires,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        token = jwt.encode(
            payload,
            self._keys.active_key(),
            algorithm=ALGORITHM,
            headers={"kid": self._keys.active_id, "typ": "JWT"},
        )
        return AccessToken(token=token, expires_at=datetime.fromtimestamp(expires, now.tzinfo))


def parse_signing_keys(spec: str) -> dict[str, Ed25519PrivateKey]:
    """Parse ``"kid1:<base64 seed>,kid2:..."``; errors name entries, never their keys."""
    keys: dict[str, Ed25519PrivateKey] = {}
    for position, raw in enumerate(spec.split(","), start=1):
        kid, sep, encoded = (part.strip() for part in raw.partition(":"))
        where = f"entry {position}"
        if not sep or not _KEY_ID.fullmatch(kid):
            raise SigningKeyError(f"{where} must be KEY_ID:BASE64_SEED, KEY_ID of [A-Za-z0-9_.-]")
        if kid in keys:
            raise SigningKeyError(f"{where} repeats key id {kid!r}")
        seed = _decode(encoded)
        if seed is None or len(seed) != SEED_SIZE:
            raise SigningKeyError(
                f"{where} (key id {kid!r}) must be the base64 of a {SEED_SIZE}-byte seed"
            )
        keys[kid] = Ed25519PrivateKey.from_private_bytes(seed)
    return keys


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
