"""Encryption contexts: each encrypted column value is bound to its column and row.

A blob copied to another user or column fails to decrypt (``FieldCipher`` authenticates
the context), so a database-level swap cannot hand one user's TOTP secret to another.
"""

from __future__ import annotations

import uuid


def totp_secret_context(user_id: uuid.UUID) -> bytes:
    return f"identity.users.totp_secret:{user_id}".encode()


def totp_pending_secret_context(user_id: uuid.UUID) -> bytes:
    return f"identity.users.totp_pending_secret:{user_id}".encode()


def phone_context(user_id: uuid.UUID) -> bytes:
    return f"identity.users.phone:{user_id}".encode()
