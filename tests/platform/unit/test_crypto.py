"""Field encryption: round trips, tamper detection, context binding, rotation, hygiene."""

from __future__ import annotations

import base64
import copy
import pickle

import pytest

from pipworks_platform.crypto import (
    BLOB_VERSION,
    NONCE_SIZE,
    DecryptionError,
    FieldCipher,
    Keyring,
    KeyringError,
    format_key_entry,
    generate_key,
)

KEY_OLD = bytes(range(32))
KEY_NEW = bytes(range(100, 132))
CONTEXT = b"identity.totp_secret:user-1"
PLAINTEXT = b"JBSWY3DPEHPK3PXP"
TAG_SIZE = 16


def _cipher(active: str = "k1", **keys: bytes) -> FieldCipher:
    return FieldCipher(Keyring(keys or {"k1": KEY_OLD}, active))


def _flip(blob: bytes, index: int) -> bytes:
    mutable = bytearray(blob)
    mutable[index] ^= 0x01
    return bytes(mutable)


def test_round_trip_bytes_and_text() -> None:
    cipher = _cipher()
    blob = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    assert PLAINTEXT not in blob
    assert cipher.decrypt(blob, context=CONTEXT) == PLAINTEXT

    text_blob = cipher.encrypt_text("Straße 1, München", context=CONTEXT)
    assert cipher.decrypt_text(text_blob, context=CONTEXT) == "Straße 1, München"

    assert cipher.decrypt(cipher.encrypt(b"", context=CONTEXT), context=CONTEXT) == b""


def test_blob_layout_is_self_describing() -> None:
    blob = _cipher().encrypt(PLAINTEXT, context=CONTEXT)
    assert blob[0] == BLOB_VERSION
    assert blob[1] == len("k1")
    assert blob[2:4] == b"k1"
    assert len(blob) == 2 + 2 + NONCE_SIZE + len(PLAINTEXT) + TAG_SIZE


def test_nonce_is_random_per_encryption() -> None:
    cipher = _cipher()
    first = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    second = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    assert first[4 : 4 + NONCE_SIZE] != second[4 : 4 + NONCE_SIZE]
    assert first != second


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="version"),
        pytest.param(1, id="key-id-length"),
        pytest.param(2, id="key-id"),
        pytest.param(4, id="nonce-first"),
        pytest.param(4 + NONCE_SIZE - 1, id="nonce-last"),
        pytest.param(4 + NONCE_SIZE, id="ciphertext"),
        pytest.param(-TAG_SIZE, id="tag-first"),
        pytest.param(-1, id="tag-last"),
    ],
)
def test_any_flipped_byte_is_detected(index: int) -> None:
    cipher = _cipher()
    blob = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError) as excinfo:
        cipher.decrypt(_flip(blob, index), context=CONTEXT)
    assert PLAINTEXT.decode() not in str(excinfo.value)


def test_key_id_swapped_for_another_known_key_is_detected() -> None:
    # Same length ids, both in the keyring: only the AAD binding catches this.
    cipher = _cipher("k1", k1=KEY_OLD, k2=KEY_OLD)
    blob = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    relabelled = blob[:2] + b"k2" + blob[4:]
    assert cipher.key_id_of(relabelled) == "k2"
    with pytest.raises(DecryptionError):
        cipher.decrypt(relabelled, context=CONTEXT)


def test_wrong_context_is_rejected() -> None:
    cipher = _cipher()
    blob = cipher.encrypt(PLAINTEXT, context=b"identity.totp_secret:user-1")
    with pytest.raises(DecryptionError) as excinfo:
        cipher.decrypt(blob, context=b"identity.totp_secret:user-2")
    assert PLAINTEXT.decode() not in str(excinfo.value)
    # The tag failure is not chained as the visible cause.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_empty_context_is_a_programming_error() -> None:
    cipher = _cipher()
    with pytest.raises(ValueError, match="context"):
        cipher.encrypt(PLAINTEXT, context=b"")
    blob = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(ValueError, match="context"):
        cipher.decrypt(blob, context=b"")


@pytest.mark.parametrize("length", [0, 1, 2, 4, 4 + NONCE_SIZE, 4 + NONCE_SIZE + TAG_SIZE - 1])
def test_truncated_blob_is_rejected(length: int) -> None:
    cipher = _cipher()
    blob = cipher.encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob[:length], context=CONTEXT)


def test_unknown_key_id_is_rejected() -> None:
    blob = _cipher("k9", k9=KEY_OLD).encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError, match="'k9'"):
        _cipher().decrypt(blob, context=CONTEXT)


def test_decrypt_text_of_binary_does_not_leak_plaintext() -> None:
    cipher = _cipher()
    secret = b"\xff\xfe top secret bytes"
    blob = cipher.encrypt(secret, context=CONTEXT)
    with pytest.raises(DecryptionError) as excinfo:
        cipher.decrypt_text(blob, context=CONTEXT)
    assert "top secret" not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_rotation() -> None:
    old = _cipher("old", old=KEY_OLD)
    blob = old.encrypt(PLAINTEXT, context=CONTEXT)
    assert old.key_id_of(blob) == "old"
    assert not old.needs_rotation(blob)

    # The new key is deployed and made active; the old key stays for reading.
    both = _cipher("new", old=KEY_OLD, new=KEY_NEW)
    assert both.needs_rotation(blob)
    assert both.decrypt(blob, context=CONTEXT) == PLAINTEXT
    assert both.key_id_of(both.encrypt(PLAINTEXT, context=CONTEXT)) == "new"

    rotated = both.rotate(blob, context=CONTEXT)
    assert both.key_id_of(rotated) == "new"
    assert not both.needs_rotation(rotated)
    assert both.decrypt(rotated, context=CONTEXT) == PLAINTEXT

    # Rotation re-authenticates: a blob cannot be laundered into another context.
    with pytest.raises(DecryptionError):
        both.rotate(blob, context=b"identity.totp_secret:user-2")

    # Once the old key is removed, only re-sealed blobs remain readable.
    new_only = _cipher("new", new=KEY_NEW)
    assert new_only.decrypt(rotated, context=CONTEXT) == PLAINTEXT
    with pytest.raises(DecryptionError, match="'old'"):
        new_only.decrypt(blob, context=CONTEXT)


def test_key_id_of_malformed_blob_raises() -> None:
    with pytest.raises(DecryptionError):
        _cipher().key_id_of(b"\x01")
    with pytest.raises(DecryptionError):
        _cipher().key_id_of(b"\x02\x02k1" + bytes(NONCE_SIZE + TAG_SIZE))


def test_from_env_values_parses_entries() -> None:
    new_b64 = base64.urlsafe_b64encode(KEY_NEW).decode()
    spec = f" {format_key_entry('2024-01', KEY_OLD)} , 2025.q1:{new_b64}"
    keyring = Keyring.from_env_values(spec, "2025.q1")
    assert keyring.key_ids == {"2024-01", "2025.q1"}
    assert keyring.active_key_id == "2025.q1"

    blob = FieldCipher(keyring).encrypt(PLAINTEXT, context=CONTEXT)
    direct = FieldCipher(Keyring({"2024-01": KEY_OLD, "2025.q1": KEY_NEW}, "2024-01"))
    assert direct.decrypt(blob, context=CONTEXT) == PLAINTEXT


SHORT_KEY_B64 = base64.b64encode(b"0123456789abcdef").decode()
GOOD_B64 = base64.b64encode(KEY_OLD).decode()


@pytest.mark.parametrize(
    ("spec", "active", "expected", "secret"),
    [
        pytest.param(
            f"k1:{GOOD_B64},k2:{SHORT_KEY_B64}",
            "k1",
            r"entry 2 \(key id 'k2'\).*16 bytes",
            SHORT_KEY_B64,
            id="wrong-length",
        ),
        pytest.param(
            f"k1:{GOOD_B64},k2:not*base64!",
            "k1",
            r"entry 2 \(key id 'k2'\).*base64",
            "not*base64!",
            id="bad-base64",
        ),
        pytest.param(
            f"k1:{GOOD_B64},{GOOD_B64}",
            "k1",
            "entry 2 is not of the form",
            GOOD_B64,
            id="missing-colon",
        ),
        pytest.param(
            f"k1:{GOOD_B64},bad id!:{GOOD_B64}",
            "k1",
            "entry 2 has an invalid key id",
            GOOD_B64,
            id="bad-key-id",
        ),
        pytest.param(
            f"k1:{GOOD_B64},k1:{GOOD_B64}",
            "k1",
            r"entry 2 \(key id 'k1'\) repeats",
            GOOD_B64,
            id="duplicate-id",
        ),
        pytest.param(f"k1:{GOOD_B64},", "k1", "entry 2 is empty", GOOD_B64, id="empty-entry"),
        pytest.param(f"k1:{GOOD_B64}", "k2", "'k2' is not one of", GOOD_B64, id="no-active"),
        pytest.param("", "k1", "entry 1 is empty", "", id="empty-spec"),
    ],
)
def test_from_env_values_errors_name_entry_without_key_text(
    spec: str, active: str, expected: str, secret: str
) -> None:
    with pytest.raises(KeyringError, match=expected) as excinfo:
        Keyring.from_env_values(spec, active)
    message = str(excinfo.value)
    if secret:
        assert secret not in message
    assert GOOD_B64 not in message
    assert excinfo.value.__cause__ is None


def test_keyring_constructor_validates() -> None:
    with pytest.raises(KeyringError, match="exactly 32 bytes, got 31"):
        Keyring({"k1": bytes(31)}, "k1")
    with pytest.raises(KeyringError, match="key id"):
        Keyring({"has space": KEY_OLD}, "has space")
    with pytest.raises(KeyringError, match="at least one key"):
        Keyring({}, "k1")
    with pytest.raises(KeyringError, match="'k2' is not in the keyring"):
        Keyring({"k1": KEY_OLD}, "k2")
    with pytest.raises(KeyringError, match="key id"):
        Keyring({"x" * 33: KEY_OLD}, "x" * 33)


def test_repr_and_pickle_do_not_reveal_keys() -> None:
    keyring = Keyring({"k1": KEY_OLD, "k2": KEY_NEW}, "k2")
    cipher = FieldCipher(keyring)
    for text in (repr(keyring), str(keyring), repr(cipher), str(cipher)):
        assert "'k1'" in text
        assert "'k2'" in text
        for key in (KEY_OLD, KEY_NEW):
            assert base64.b64encode(key).decode() not in text
            assert key.hex() not in text
            assert repr(key) not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(keyring)
    assert copy.deepcopy(keyring) is keyring


def test_generate_and_format_key() -> None:
    first, second = generate_key(), generate_key()
    assert len(first) == 32
    assert first != second
    entry = format_key_entry("k1", first)
    assert entry.startswith("k1:")
    keyring = Keyring.from_env_values(entry, "k1")
    blob = FieldCipher(keyring).encrypt(PLAINTEXT, context=CONTEXT)
    assert _cipher("k1", k1=first).decrypt(blob, context=CONTEXT) == PLAINTEXT
    with pytest.raises(KeyringError):
        format_key_entry("k1", first[:16])
