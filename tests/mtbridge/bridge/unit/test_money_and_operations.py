"""Exact amounts from the wire, currency precision, and deal comments of operations."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from pipworks_mtbridge.domain.balance import (
    MAX_COMMENT_LENGTH,
    OperationKind,
    deal_comment,
    signed_amount,
)
from pipworks_mtbridge.domain.deals import deal_event_id
from pipworks_mtbridge.domain.money import InvalidAmount, check_precision, parse_amount, to_text
from pipworks_mtbridge.domain.passwords import generate_password


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", Decimal(100)),
        ("0.01", Decimal("0.01")),
        (" 12.50 ", Decimal("12.50")),
        ("-5", Decimal(-5)),
    ],
)
def test_amounts_parse_exactly(text: str, value: Decimal) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1e3",
        "1E+2",
        "+5",
        "1,000.00",
        "NaN",
        "Infinity",
        "0x10",
        "1.",
        ".5",
        "01",
        "1" * 40,
    ],
)
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text)


def test_precision_is_the_currencys() -> None:
    check_precision(Decimal("10.25"), 2)
    check_precision(Decimal("10.250"), 2)  # trailing zeros are not precision
    check_precision(Decimal(100), 0)
    with pytest.raises(InvalidAmount, match="more than 2 decimals"):
        check_precision(Decimal("10.255"), 2)
    with pytest.raises(InvalidAmount, match="more than 0 decimals"):
        check_precision(Decimal("1.5"), 0)


def test_decimal_text_has_no_exponent() -> None:
    assert to_text(Decimal("1E+2")) == "100"
    assert to_text(Decimal("0.00000001")) == "0.00000001"
    assert to_text(Decimal("-0")) == "0"


def test_withdrawals_debit_and_everything_else_is_as_given() -> None:
    assert signed_amount(OperationKind.WITHDRAWAL, Decimal(5)) == Decimal(-5)
    assert signed_amount(OperationKind.DEPOSIT, Decimal(5)) == Decimal(5)
    assert signed_amount(OperationKind.CREDIT, Decimal(-5)) == Decimal(-5)


def test_deal_comments_fit_mt5_and_identify_the_key() -> None:
    keys = [uuid.uuid4().hex for _ in range(200)] + ["k" * 64]
    comments = {
        deal_comment(kind, "mt5-live", 500001, key) for kind in OperationKind for key in keys
    }
    assert len(comments) == len(keys) * len(OperationKind)
    assert all(len(c) <= MAX_COMMENT_LENGTH for c in comments)
    assert deal_comment(OperationKind.DEPOSIT, "mt5-live", 1, "a") == deal_comment(
        OperationKind.DEPOSIT, "mt5-live", 1, "a"
    )
    assert deal_comment(OperationKind.DEPOSIT, "mt5-live", 1, "a").startswith("Deposit ")
    assert deal_comment(OperationKind.DEPOSIT, "mt5-live", 2, "a") != deal_comment(
        OperationKind.DEPOSIT, "mt5-live", 1, "a"
    )


def test_deal_event_ids_are_stable_and_per_server() -> None:
    assert deal_event_id("mt5-live", 7) == deal_event_id("mt5-live", 7)
    assert deal_event_id("mt5-live", 7) != deal_event_id("mt5-demo", 7)
    assert deal_event_id("mt5-live", 7).version == 5


def test_generated_passwords_meet_the_mt5_policy() -> None:
    seen = set()
    for _ in range(200):
        password = generate_password()
        assert 8 <= len(password) <= 16
        assert any(c.islower() for c in password)
        assert any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(not c.isalnum() for c in password)
        seen.add(password)
    assert len(seen) == 200
    with pytest.raises(ValueError, match="8 to 16"):
        generate_password(7)
