"""Password policy: long enough, not common, not a common word padded or repeated.

Follows NIST SP 800-63B §5.1.1.2: a minimum length, a blocklist of common passwords,
and no composition rules (they make passwords harder to remember, not to guess).
Passwords are compared and hashed in Unicode NFKC form, so the same password typed
on two keyboards that encode an accent differently still matches.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

MIN_LENGTH = 12
# Long enough for any passphrase, short enough that hashing it is never a DoS vector.
MAX_LENGTH = 256
COMMON_PASSWORDS_RESOURCE = ("data", "common_passwords.txt")
# Digits and punctuation people bolt onto a common word to pass a length rule.
_AFFIXES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_MIN_CORE_LENGTH = 4
_MAX_REPEATED_UNIT = 3


def canonical_password(password: str) -> str:
    """The form a password is hashed and checked in."""
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    """The blocklist shipped with the package (lower-cased; see the file's header)."""
    text = resources.files(__package__).joinpath(*COMMON_PASSWORDS_RESOURCE).read_text("utf-8")
    return frozenset(
        line for line in (raw.strip() for raw in text.splitlines()) if line and line[0] != "#"
    )


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy; :meth:`problems` lists every shortfall."""

    min_length: int = MIN_LENGTH
    max_length: int = MAX_LENGTH
    blocklist: frozenset[str] = field(default_factory=common_passwords, repr=False)

    def problems(self, password: str) -> list[str]:
        candidate = canonical_password(password)
        length = len(candidate)
        if length < self.min_length:
            return [f"must be at least {self.min_length} characters"]
        if length > self.max_length:
            return [f"must be at most {self.max_length} characters"]
        lowered = candidate.lower()
        if lowered in self.blocklist:
            return ["is too common; choose a less predictable password"]
        core = _AFFIXES.sub("", lowered)
        if len(core) >= _MIN_CORE_LENGTH and core in self.blocklist:
            return ["is a common password with digits or symbols added"]
        unit = _repeated_unit(lowered)
        if unit is not None and (len(unit) <= _MAX_REPEATED_UNIT or unit in self.blocklist):
            return ["must not repeat a short or common pattern"]
        return []


def _repeated_unit(text: str) -> str | None:
    """The shortest block that ``text`` is a repetition of (``"abab"`` -> ``"ab"``), if any."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return None
