"""Unit tests of the wire protocol: the handshake hash, envelopes and retcode mapping."""

from __future__ import annotations

import pickle

import pytest

from pipworks_mtbridge.mt5 import (
    Mt5AlreadyExists,
    Mt5AuthError,
    Mt5Client,
    Mt5Error,
    Mt5InvalidParams,
    Mt5NotEnoughMoney,
    Mt5NotFound,
    Mt5PermissionDenied,
    Mt5TradeDisabled,
    Mt5Unavailable,
    Mt5WeakPassword,
)
from pipworks_mtbridge.mt5.errors import error_for_retcode, parse_retcode
from pipworks_mtbridge.mt5.protocol import PasswordHash, answer_for, parse_envelope, password_hash

# A vector worked by hand from DESIGN.md §4 with an independent MD5 (openssl md5):
#   password                "Pa55word"
#   UTF-16LE(password)      50 00 61 00 35 00 35 00 77 00 6f 00 72 00 64 00
#   MD5(that)               525f20cccf253dcfe3472a2507298d44
#   ph = MD5(↑ ‖ "WebAPI")  47d922eefa0363ae496de8fc61bb0296
#   srv_rand                000102030405060708090a0b0c0d0e0f
#   MD5(ph ‖ srv_rand)      b81de4407f293b8c8e90000485db88a2   (srv_rand_answer)
#   cli_rand                ff x 16
#   MD5(ph ‖ cli_rand)      b1b535575c135074ebd0a106d9b556bd   (cli_rand_answer)
PASSWORD = "Pa55word"
PH = "47d922eefa0363ae496de8fc61bb0296"
SRV_RAND = bytes(range(16))
SRV_RAND_ANSWER = "b81de4407f293b8c8e90000485db88a2"
CLI_RAND = b"\xff" * 16
CLI_RAND_ANSWER = "b1b535575c135074ebd0a106d9b556bd"


def test_password_hash_matches_the_hand_computed_vector() -> None:
    assert password_hash(PASSWORD).hex() == PH


def test_challenge_answers_match_the_hand_computed_vector() -> None:
    ph = bytes.fromhex(PH)
    assert answer_for(ph, SRV_RAND).hex() == SRV_RAND_ANSWER
    assert answer_for(ph, CLI_RAND).hex() == CLI_RAND_ANSWER


def test_password_hash_object_verifies_and_hides_itself() -> None:
    secret = PasswordHash(PASSWORD)
    assert secret.answer(SRV_RAND).hex() == SRV_RAND_ANSWER
    assert secret.verify(CLI_RAND, bytes.fromhex(CLI_RAND_ANSWER))
    assert not secret.verify(CLI_RAND, bytes(16))
    for text in (repr(secret), str(secret)):
        assert PH not in text
        assert PASSWORD not in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_non_ascii_passwords_hash_as_utf16() -> None:
    # "é" is U+00E9: UTF-16LE e9 00, unlike UTF-8 c3 a9.
    assert password_hash("é") != password_hash("Ã©")
    assert len(password_hash("é")) == 16


def test_client_repr_never_shows_the_password() -> None:
    client = Mt5Client("https://mt5.example:443", 1000, "Sup3r-Secret")
    assert "Sup3r-Secret" not in repr(client)
    assert "Sup3r-Secret" not in repr(vars(client))
    with pytest.raises(ValueError, match="empty"):
        Mt5Client("https://mt5.example:443", 1000, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 Done", (0, "Done")),
        ("3004 User already exists", (3004, "User already exists")),
        ("13", (13, "")),
        (" 10019 No money ", (10019, "No money")),
    ],
)
def test_parse_retcode(text: str, expected: tuple[int, str]) -> None:
    assert parse_retcode(text) == expected


@pytest.mark.parametrize("text", [None, 3, "", "Done", "x13 Not found"])
def test_malformed_retcode_is_a_protocol_error(text: object) -> None:
    with pytest.raises(Mt5Error, match="malformed"):
        parse_retcode(text)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (3, Mt5InvalidParams),
        (13, Mt5NotFound),
        (3004, Mt5AlreadyExists),
        (17, Mt5AlreadyExists),
        (3006, Mt5WeakPassword),
        (10019, Mt5NotEnoughMoney),
        (8, Mt5PermissionDenied),
        (10017, Mt5TradeDisabled),
        (1000, Mt5AuthError),
        (1001, Mt5AuthError),
        (1999, Mt5AuthError),
        (7, Mt5Unavailable),
        (9, Mt5Unavailable),
        (10, Mt5Unavailable),
        (12, Mt5Unavailable),
        (15, Mt5Unavailable),
        (2, Mt5Error),
        (2000, Mt5Error),
        (10004, Mt5Error),
    ],
)
def test_retcode_maps_to_its_exception(code: int, kind: type[Mt5Error]) -> None:
    error = error_for_retcode(code, "message")
    assert type(error) is kind
    assert error.retcode == code
    assert error.message == "message"
    assert str(error) == f"{code} message"


def test_envelope_success_returns_the_reply_with_decimals_for_json_floats() -> None:
    reply = parse_envelope(b'{"retcode":"0 Done","answer":{"Balance":"10.50","Raw":1.25}}')
    assert reply["answer"]["Balance"] == "10.50"
    assert str(reply["answer"]["Raw"]) == "1.25"
    assert type(reply["answer"]["Raw"]).__name__ == "Decimal"


def test_envelope_error_raises_the_typed_error() -> None:
    with pytest.raises(Mt5AlreadyExists) as caught:
        parse_envelope(b'{"retcode":"3004 User already exists"}')
    assert caught.value.retcode == 3004


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"answer":1}'])
def test_malformed_envelope_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(Mt5Error, match="malformed"):
        parse_envelope(body)


def test_unavailable_carries_maybe_applied() -> None:
    assert Mt5Unavailable("down").maybe_applied is False
    error = Mt5Unavailable("lost", maybe_applied=True)
    assert error.maybe_applied
    assert error.retcode == 10
