"""Trading passwords that satisfy MT5's policy (8-16 characters, mixed classes)."""

from __future__ import annotations

import secrets
import string

LENGTH = 12
_LOWER = string.ascii_lowercase
_UPPER = string.ascii_uppercase
_DIGITS = string.digits
_SPECIAL = "#@!$%&*-_=+"
_ALL = _LOWER + _UPPER + _DIGITS + _SPECIAL


def generate_password(length: int = LENGTH) -> str:
    """A random password with at least one lower, upper, digit and special character."""
    if not 8 <= length <= 16:
        raise ValueError("MT5 passwords have 8 to 16 characters")
    chars = [secrets.choice(cls) for cls in (_LOWER, _UPPER, _DIGITS, _SPECIAL)]
    chars += [secrets.choice(_ALL) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
