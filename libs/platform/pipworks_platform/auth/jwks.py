"""Public keys that verify access tokens: JWK conversion and a refreshing cache.

Keys are fetched from identity's GetJwks. The cache refetches when a token names a key
id it does not know (identity rotated its key), but not more often than
``min_refresh_seconds``, so garbage key ids cannot turn into a flood of fetches.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipworks_platform.grpc_client import insecure_channel

JwkSet = Sequence[Mapping[str, str]]
JwksFetch = Callable[[], Awaitable[JwkSet]]


class JwksUnavailable(Exception):
    """The key set could not be fetched."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_from_public_key(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


def public_key_from_jwk(jwk: Mapping[str, str]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("only OKP/Ed25519 keys are accepted")
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        raise ValueError("key is not an EdDSA signing key")
    raw = _b64url_decode(jwk["x"])
    if len(raw) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


class JwksCache:
    def __init__(
        self,
        fetch: JwksFetch,
        *,
        min_refresh_seconds: float = 10.0,
        max_age_seconds: float = 300.0,
    ) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        """The key named ``kid``; raises JwksUnavailable if keys are needed but unreachable."""
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age
        if kid in self._keys and not stale:
            return self._keys[kid]
        may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh
        if stale or may_refresh:
            await self._refresh(force=stale)
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._fetched_at and now - self._fetched_at < self._min_refresh:
                return  # another caller refreshed while we waited
            try:
                jwks = await self._fetch()
            except Exception as exc:
                if self._keys:  # keep serving known keys through an identity outage
                    self._fetched_at = now - self._max_age + self._min_refresh
                    return
                raise JwksUnavailable(str(exc)) from exc
            keys = {}
            for jwk in jwks:
                try:
                    keys[jwk["kid"]] = public_key_from_jwk(jwk)
                except (KeyError, ValueError):
                    continue
            self._keys = keys
            self._fetched_at = now


def identity_jwks_fetch(target: str, *, timeout: float = 3.0) -> JwksFetch:
    """Fetch the key set from identity's public GetJwks over gRPC."""
    from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

    channel: grpc.aio.Channel | None = None

    async def fetch() -> JwkSet:
        nonlocal channel
        if channel is None:
            channel = insecure_channel(target)
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        reply = await stub.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=timeout)
        return [
            {"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.use}
            for k in reply.keys
        ]

    return fetch
