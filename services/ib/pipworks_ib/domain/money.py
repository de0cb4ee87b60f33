"""Exact money: decimal text from the wire, currency precision, half-even rounding."""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,10})?")
MAX_TEXT_LENGTH = 32
DEFAULT_DIGITS = 2
# ISO 4217 minor units for the currencies that differ from two decimals.
CURRENCY_DIGITS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "HUF": 2,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "USC": 2,
}
ZERO = Decimal(0)


class InvalidAmount(ValueError):
    """The text is not a decimal amount this service accepts; the message says why."""


def parse_decimal(text: str) -> Decimal:
    """Parse ``"1250.50"`` exactly; reject exponents, ``+`` and junk."""
    text = text.strip()
    if not text:
        raise InvalidAmount("is required")
    if len(text) > MAX_TEXT_LENGTH or not _DECIMAL.fullmatch(text):
        raise InvalidAmount('must be a decimal number such as "100.50"')
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidAmount('must be a decimal number such as "100.50"') from None


def digits_of(currency: str) -> int:
    return CURRENCY_DIGITS.get(currency.upper(), DEFAULT_DIGITS)


@functools.cache
def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-digits_of(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round once, half-even, to the currency's smallest unit."""
    return amount.quantize(_unit(currency), rounding=ROUND_HALF_EVEN)


def to_text(value: Decimal) -> str:
    """Plain decimal text: no exponent; ``-0`` is ``0``."""
    text = format(value, "f")
    return text[1:] if text.startswith("-") and Decimal(text) == 0 else text
