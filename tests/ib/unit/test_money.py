"""Amounts read at their currency's precision on the wire."""

from decimal import Decimal

from pipworks_ib.domain.money import money_text


def test_money_text_uses_the_currencys_minor_units_without_changing_the_value():
    assert money_text(Decimal("7.00000000"), "USD") == "7.00"
    assert money_text(Decimal("1500.00000000"), "jpy") == "1500"
    assert money_text(Decimal("0.12500000"), "KWD") == "0.125"
    assert money_text(Decimal("-0E-8"), "EUR") == "0.00"
    assert Decimal(money_text(Decimal("123.45000000"), "USD")) == Decimal("123.45")
