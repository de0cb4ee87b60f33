"""A test token authority: an Ed25519 key, its JWKS, and access tokens signed with it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from pipworks_platform.auth import JwksFetch, jwk_from_public_key

ISSUER = "pipworks-identity"
AUDIENCE = "pipworks"


@dataclass
class TokenAuthority:
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def signing_key_env(self) -> str:
        """This key as identity's PIPWORKS_IDENTITY_SIGNING_KEYS entry (kid:base64 seed)."""
        seed = self.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"{self.kid}:{base64.b64encode(seed).decode()}"

    def jwks(self) -> list[dict[str, str]]:
        return [jwk_from_public_key(self.kid, self.key.public_key())]

    def jwks_source(self) -> Callable[[Any], JwksFetch]:
        """A ServiceDefinition ``jwks_source`` that serves this authority's keys."""
        keys = self.jwks()

        def source(infra: Any) -> JwksFetch:
            async def fetch() -> list[dict[str, str]]:
                return keys

            return fetch

        return source

    def jwks_json(self) -> str:
        return json.dumps(self.jwks())

    def mint(
        self,
        subject: str = "user-1",
        *,
        roles: tuple[str, ...] = ("client",),
        aal: int = 1,
        mfa: bool = False,
        kind: str = "user",
        ttl: float = 600,
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
            "jti": str(uuid.uuid4()),
            "typ": kind,
            "roles": list(roles),
            "aal": aal,
            "mfa": mfa,
        }
        if kind == "user":
            claims["sid"] = str(uuid.uuid4())
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def metadata(self, token: str | None = None, **claims: Any) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token or self.mint(**claims)}"),)
