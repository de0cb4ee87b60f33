"""Exact decimal money on the wire: strict parsing and plain text, never floats.

Pure code (no I/O), so services' domain layers may use it. Amounts travel as canonical
decimal text: an optional minus, digits, an optional fraction; no exponent, no ``+``.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

MAX_TEXT_LENGTH = 32
MAX_INTEGER_DIGITS = 18


class InvalidAmount(ValueError):
    """The text is not an amount the caller accepts; the message says why."""


@functools.cache
def _pattern(max_decimals: int) -> re.Pattern[str]:
    return re.compile(
        rf"-?(0|[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}})(\.[0-9]{{1,{max_decimals}}})?"
    )


def parse_decimal(text: str, *, max_decimals: int = 10) -> Decimal:
    """Parse ``"1250.50"`` exactly; reject exponents, ``+``, floats' artefacts and junk."""
    text = text.strip()
    if not text:
        raise InvalidAmount("is required")
    if len(text) > MAX_TEXT_LENGTH or not _pattern(max_decimals).fullmatch(text):
        raise InvalidAmount('must be a decimal number such as "100.50"')
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidAmount('must be a decimal number such as "100.50"') from None


def to_text(value: Decimal) -> str:
    """Plain decimal text for the wire: no exponent; ``-0`` is ``0``."""
    text = format(value, "f")
    return text[1:] if text.startswith("-") and Decimal(text) == 0 else text
