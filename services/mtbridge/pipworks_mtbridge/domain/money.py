"""Exact money: parsing decimal strings from the wire and checking them against a currency."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Canonical decimal text: optional minus, digits, optional fraction. No exponent, no '+'.
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?")
MAX_TEXT_LENGTH = 32


class InvalidAmount(ValueError):
    """The text is not an amount this service accepts; the message says why."""


def parse_amount(text: str) -> Decimal:
    """Parse ``"1250.50"`` exactly; reject exponents, floats' artefacts and junk."""
    text = text.strip()
    if not text:
        raise InvalidAmount("is required")
    if len(text) > MAX_TEXT_LENGTH or not _DECIMAL.fullmatch(text):
        raise InvalidAmount('must be a decimal number such as "100.50"')
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidAmount('must be a decimal number such as "100.50"') from None


def decimals_of(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_precision(amount: Decimal, digits: int) -> None:
    """Refuse amounts finer than the currency's smallest unit (2 digits for USD)."""
    if decimals_of(amount.normalize() if amount else amount) > digits:
        raise InvalidAmount(f"has more than {digits} decimals, the precision of the currency")


def in_currency(amount: Decimal, digits: int) -> Decimal:
    """The amount written with the currency's decimals (``250`` → ``250.00`` for USD)."""
    return amount.quantize(Decimal(1).scaleb(-digits))


def to_text(value: Decimal) -> str:
    """Plain decimal text for the wire: no exponent, no trailing zeros beyond the value's."""
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text
