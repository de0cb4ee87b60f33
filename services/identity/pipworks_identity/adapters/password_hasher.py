"""argon2id password hashing (RFC 9106) on a worker thread.

Hashing is deliberately slow and memory-hard, so it runs off the event loop. Parameters
come from settings; hashes made under older parameters keep verifying and are upgraded
on the next successful login (:meth:`PasswordHasher.needs_rehash`).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from prometheus_client import Counter

from pipworks_identity.domain.passwords import canonical_password

PASSWORD_VERIFICATIONS = Counter(
    "pipworks_identity_password_verifications_total",
    "argon2 verifications of passwords and client secrets, by outcome.",
    ["outcome"],
)


@dataclass(frozen=True)
class Argon2Parameters:
    """Defaults follow RFC 9106's second recommendation, scaled to one lane per hash."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


class PasswordHasher:
    def __init__(self, parameters: Argon2Parameters) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # Verified against when there is no real hash (unknown email), so that a miss
        # costs the same time as a wrong password and does not reveal the account.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, canonical_password(secret))

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """Whether ``secret`` matches; with ``stored_hash=None`` it spends the same time."""
        matched = await asyncio.to_thread(
            self._verify, stored_hash or self._dummy_hash, canonical_password(secret)
        )
        matched = matched and stored_hash is not None
        PASSWORD_VERIFICATIONS.labels("match" if matched else "mismatch").inc()
        return matched

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the configured ones."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
