"""Exact money: parsing decimal strings from the wire and checking them against a currency."""

from __future__ import annotations

from decimal import Decimal

from pipworks_platform.money import InvalidAmount, parse_decimal, to_text

__all__ = ["InvalidAmount", "check_precision", "in_currency", "parse_amount", "to_text"]

# The bridge keeps amounts to 8 decimals (NUMERIC(28, 8)).
MAX_DECIMALS = 8


def parse_amount(text: str) -> Decimal:
    """Parse ``"1250.50"`` exactly; reject exponents, floats' artefacts and junk."""
    return parse_decimal(text, max_decimals=MAX_DECIMALS)


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
