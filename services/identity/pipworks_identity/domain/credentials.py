"""Opaque secrets the service hands out: one-time tokens, recovery codes, client secrets.

They are random (``secrets``), shown to their owner once, and stored only as SHA-256
digests. A fast hash is enough here, unlike for passwords: with 256 bits (tokens) or
79 bits (recovery codes) of entropy there is nothing to gain from guessing offline.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 32
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16
RECOVERY_CODE_GROUP = 4
# No 0/o, 1/l/i: codes get read off paper and typed in.
RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CLIENT_ID_PREFIX = "sa_"
MAX_TOKEN_LENGTH = 256

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
_CLIENT_ID = re.compile(r"sa_[A-Za-z0-9_-]{16,64}")


def new_token() -> str:
    """A URL-safe random token (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """What is stored and looked up instead of the token itself."""
    return hashlib.sha256(token.encode("ascii")).digest()


def is_well_formed_token(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Recovery codes as shown to the user: ``abcd-efgh-jkmn-pqrs``."""
    return [_group(_random_code()) for _ in range(count)]


def normalise_recovery_code(raw: str) -> str:
    """The compared form: dashes and spaces dropped, lower case."""
    return "".join(ch for ch in raw.lower() if ch not in "- \t")


def is_well_formed_recovery_code(code: str) -> bool:
    return len(code) == RECOVERY_CODE_LENGTH and all(c in RECOVERY_CODE_ALPHABET for c in code)


def recovery_code_digest(user_id: str, code: str) -> bytes:
    """Digest of a normalised code, bound to its user so equal codes never collide."""
    material = f"pipworks.identity.recovery_code:{user_id}:{normalise_recovery_code(code)}"
    return hashlib.sha256(material.encode("ascii")).digest()


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(18)


def is_well_formed_client_id(client_id: str) -> bool:
    return _CLIENT_ID.fullmatch(client_id) is not None


def _random_code() -> str:
    return "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))


def _group(code: str) -> str:
    return "-".join(
        code[i : i + RECOVERY_CODE_GROUP] for i in range(0, len(code), RECOVERY_CODE_GROUP)
    )
