"""RFC 6238 TOTP: the appendix B vectors, the drift window and the replay rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from pipworks_identity.adapters.totp import Totp
from pipworks_identity.domain.totp import (
    candidate_steps,
    is_well_formed,
    normalise_code,
    time_step,
)

RFC_SECRET = b"12345678901234567890"  # RFC 6238 appendix B, the SHA-1 seed


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_appendix_b_sha1_vectors(unix_time: int, expected: str) -> None:
    import base64

    otp = pyotp.TOTP(base64.b32encode(RFC_SECRET).decode(), digits=8, interval=30)
    assert otp.at(unix_time) == expected
    # Our step arithmetic agrees with the RFC's T = floor(unix_time / 30).
    assert time_step(datetime.fromtimestamp(unix_time, UTC)) == unix_time // 30


def test_codes_match_their_step_within_one_step_of_drift() -> None:
    totp = Totp("Pipworks")
    secret = totp.new_secret()
    now = datetime.fromtimestamp(1_700_000_015, UTC)
    step = time_step(now)
    otp = pyotp.TOTP(secret)
    for drift in (-1, 0, 1):
        assert totp.matching_step(secret, otp.at((step + drift) * 30), now) == step + drift
    assert totp.matching_step(secret, otp.at((step + 2) * 30), now) is None
    assert totp.matching_step(secret, otp.at((step - 2) * 30), now) is None
    assert totp.matching_step(secret, "12345", now) is None
    assert candidate_steps(now) == (step, step - 1, step + 1)


def test_provisioning_uri_names_issuer_and_account() -> None:
    totp = Totp("Pipworks")
    secret = totp.new_secret()
    assert len(secret) == 32
    uri = totp.provisioning_uri(secret, "ann@example.com")
    parsed = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/Pipworks:ann%40example.com?")
    assert parsed.secret == secret
    assert parsed.issuer == "Pipworks"
    assert parsed.digits == 6
    assert parsed.interval == 30


def test_codes_are_normalised_and_checked_for_shape() -> None:
    assert normalise_code(" 123 456 ") == "123456"
    assert is_well_formed("123456")
    assert not is_well_formed("12345a")
    full_width = "".join(chr(0xFF10 + int(d)) for d in "123456")
    assert not is_well_formed(full_width)  # digits, but not ASCII ones
