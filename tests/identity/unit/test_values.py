"""Value objects: email, country, phone, referral code."""

from __future__ import annotations

import pytest

from pipworks_identity.domain.countries import COUNTRY_CODES, ISO_3166_ALPHA2
from pipworks_identity.domain.values import (
    InvalidValue,
    parse_country_code,
    parse_email,
    parse_phone,
    parse_referral_code,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann.Smith+fx@Example.COM ", "ann.smith+fx@example.com"),
        ("o'neil@sub.broker.co.uk", "o'neil@sub.broker.co.uk"),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
    ],
)
def test_emails_are_normalised(raw: str, expected: str) -> None:
    assert parse_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plainaddress",
        "@example.com",
        "ann@",
        "ann@localhost",
        "ann@@example.com",
        "ann..smith@example.com",
        ".ann@example.com",
        "ann@-example.com",
        "ann@example.c",
        "ann@exa mple.com",
        "ánn@example.com",
        "ann@[127.0.0.1]",
        "a" * 65 + "@example.com",
        "ann@" + "a" * 250 + ".com",
    ],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_email(raw)


def test_country_codes_are_the_249_assigned_iso_codes() -> None:
    assert len(ISO_3166_ALPHA2) == len(COUNTRY_CODES) == 249
    assert parse_country_code(" cy ") == "CY"
    for bad in ("", "UK", "XK", "ZZ", "CYP", "C"):
        with pytest.raises(InvalidValue):
            parse_country_code(bad)


def test_phones_are_e164() -> None:
    assert parse_phone("+357 99-123 456") == "+35799123456"
    for bad in ("0035799123456", "+0123456789", "+12", "+1234567890123456", "phone"):
        with pytest.raises(InvalidValue):
            parse_phone(bad)


def test_referral_codes() -> None:
    assert parse_referral_code(" IB-42_a ") == "IB-42_a"
    for bad in ("has space", "x" * 65, "ünï"):
        with pytest.raises(InvalidValue):
            parse_referral_code(bad)
