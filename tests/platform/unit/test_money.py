"""Decimal text on the wire: exact parsing, strict refusals, plain output."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipworks_platform.money import InvalidAmount, parse_decimal, to_text


@pytest.mark.parametrize(
    ("text", "value"),
    [("100.50", Decimal("100.50")), ("-0.0001", Decimal("-0.0001")), (" 7 ", Decimal(7))],
)
def test_canonical_decimal_text_parses_exactly(text: str, value: Decimal) -> None:
    parsed = parse_decimal(text)
    assert parsed == value
    assert parsed.as_tuple() == value.as_tuple()  # no float round trip


@pytest.mark.parametrize("text", ["", "1e3", "+1", "01", "1.", ".5", "NaN", "1" * 19, "1,5"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_decimal(text)


def test_the_number_of_decimals_is_the_callers_to_bound() -> None:
    assert parse_decimal("0.12345678", max_decimals=8) == Decimal("0.12345678")
    with pytest.raises(InvalidAmount):
        parse_decimal("0.123456789", max_decimals=8)


def test_text_has_no_exponent_and_no_negative_zero() -> None:
    assert to_text(Decimal("1E+3")) == "1000"
    assert to_text(Decimal("-0.00")) == "0.00"
    assert to_text(Decimal("12.50")) == "12.50"
