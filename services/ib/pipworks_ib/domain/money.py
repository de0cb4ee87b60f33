"""Exact money: decimal text from the wire, currency precision, half-even rounding."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_EVEN, Decimal

from pipworks_platform.money import InvalidAmount, parse_decimal, to_text

__all__ = ["InvalidAmount", "digits_of", "money_text", "parse_decimal", "quantize", "to_text"]

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


def digits_of(currency: str) -> int:
    return CURRENCY_DIGITS.get(currency.upper(), DEFAULT_DIGITS)


@functools.cache
def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-digits_of(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round once, half-even, to the currency's smallest unit."""
    return amount.quantize(_unit(currency), rounding=ROUND_HALF_EVEN)


def money_text(amount: Decimal, currency: str) -> str:
    """Wire text of an amount at the currency's precision ("7.00", not the column's "7.00000000").

    Ledger amounts are already rounded to the currency (and sums of them stay there), so
    this changes how they read, never what they are worth.
    """
    return to_text(quantize(amount, currency))
