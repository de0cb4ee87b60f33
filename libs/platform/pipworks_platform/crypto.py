"""Field encryption at rest: AES-256-GCM under a keyring of named keys.

Personal data (document numbers, dates of birth, TOTP secrets, ...) is stored as opaque
blobs produced here. Each blob names the key that sealed it, so keys can rotate without a
flag day: new writes use the *active* key, old blobs keep decrypting as long as their key
stays in the keyring, and :meth:`FieldCipher.rotate` re-seals them under the active key.

Blob layout (version 1)::

    +---------+------------+-----------------+-----------+----------------------+
    | version | key id len | key id (ASCII)  | nonce     | ciphertext + GCM tag |
    | 1 byte  | 1 byte     | 1..32 bytes     | 12 bytes  | len(plaintext) + 16  |
    +---------+------------+-----------------+-----------+----------------------+

The associated data is the header (version, key id length, key id) followed by the
caller's *context*, e.g. ``b"identity.totp_secret:<user_id>"``. Binding the context means a
blob copied into another row or column fails to decrypt; binding the header means the
version and key id cannot be altered without detection. The header is length-prefixed, so
header + context is unambiguous.

Keys come from ``PIPWORKS_ENCRYPTION_KEYS`` as ``"kid1:<base64>,kid2:<base64>"`` and
``PIPWORKS_ENCRYPTION_ACTIVE_KEY`` names the key used for new writes. No error message or
repr produced by this module contains key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "BLOB_VERSION",
    "KEY_SIZE",
    "NONCE_SIZE",
    "CryptoError",
    "DecryptionError",
    "FieldCipher",
    "Keyring",
    "KeyringError",
    "format_key_entry",
    "generate_key",
]

BLOB_VERSION = 1
KEY_SIZE = 32  # AES-256
NONCE_SIZE = 12  # the GCM standard nonce; random per encryption
TAG_SIZE = 16
MAX_KEY_ID_LENGTH = 32

_KEY_ID_RULE = "[A-Za-z0-9_.-]{1,32}"
_KEY_ID_RE = re.compile(_KEY_ID_RULE)


class CryptoError(Exception):
    """Base class of this module's errors; messages never contain keys or plaintext."""


class KeyringError(CryptoError, ValueError):
    """The keyring configuration is invalid (bad key id, key size, base64, active key)."""


class DecryptionError(CryptoError):
    """A blob cannot be opened: tampered, wrong context, unknown key id, or malformed."""


def _is_valid_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


def generate_key() -> bytes:
    """Return a fresh random 256-bit key from the OS CSPRNG."""
    return AESGCM.generate_key(bit_length=256)


def format_key_entry(key_id: str, key: bytes) -> str:
    """Format one ``kid:<base64>`` entry for ``PIPWORKS_ENCRYPTION_KEYS``.

    Join several entries with ``,``. The result *is* key material: put it in a secret
    store, never in a log or a repository.
    """
    if not _is_valid_key_id(key_id):
        raise KeyringError(f"key id must match {_KEY_ID_RULE}")
    if len(key) != KEY_SIZE:
        raise KeyringError(f"key {key_id!r} must be exactly {KEY_SIZE} bytes, got {len(key)}")
    return f"{key_id}:{base64.b64encode(bytes(key)).decode('ascii')}"


def _decode_key(text: str) -> bytes | None:
    """Decode standard or URL-safe base64 strictly; ``None`` if it is not base64."""
    normalized = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        return None


class Keyring:
    """Named AES-256 keys plus the id of the one used for new encryptions.

    Immutable after construction. Rotate by deploying a keyring with the new key added
    and made active; keep the old key until every blob has been re-sealed.
    """

    __slots__ = ("_active_key_id", "_aeads")

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise KeyringError("keyring must contain at least one key")
        aeads: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not _is_valid_key_id(key_id):
                # Do not echo an invalid id: it may be a mis-pasted key.
                raise KeyringError(f"every key id must match {_KEY_ID_RULE}")
            if not isinstance(key, bytes | bytearray | memoryview):
                raise KeyringError(f"key {key_id!r} must be bytes")
            if len(key) != KEY_SIZE:
                raise KeyringError(
                    f"key {key_id!r} must be exactly {KEY_SIZE} bytes, got {len(key)}"
                )
            aeads[key_id] = AESGCM(bytes(key))
        if not _is_valid_key_id(active_key_id):
            raise KeyringError(f"active key id must match {_KEY_ID_RULE}")
        if active_key_id not in aeads:
            raise KeyringError(
                f"active key id {active_key_id!r} is not in the keyring "
                f"(known ids: {', '.join(sorted(aeads))})"
            )
        self._aeads = aeads
        self._active_key_id = active_key_id

    @classmethod
    def from_env_values(cls, keys_spec: str, active_key_id: str) -> Keyring:
        """Parse ``"kid1:<base64>,kid2:<base64>"`` (``PIPWORKS_ENCRYPTION_KEYS``).

        Whitespace around entries is ignored; standard and URL-safe base64 are accepted.
        Errors name the offending entry by position (and by key id once the id is known
        to be well formed) but never echo the key text.
        """
        keys: dict[str, bytes] = {}
        entries = keys_spec.split(",")
        for position, raw_entry in enumerate(entries, start=1):
            entry = raw_entry.strip()
            where = f"PIPWORKS_ENCRYPTION_KEYS entry {position}"
            if not entry:
                raise KeyringError(f"{where} is empty (expected KEY_ID:BASE64_KEY)")
            key_id, sep, key_text = entry.partition(":")
            key_id, key_text = key_id.strip(), key_text.strip()
            if not sep:
                raise KeyringError(f"{where} is not of the form KEY_ID:BASE64_KEY")
            if not _is_valid_key_id(key_id):
                raise KeyringError(f"{where} has an invalid key id (must match {_KEY_ID_RULE})")
            where = f"{where} (key id {key_id!r})"
            if key_id in keys:
                raise KeyringError(f"{where} repeats a key id")
            key = _decode_key(key_text)
            if key is None:
                raise KeyringError(f"{where} is not valid base64")
            if len(key) != KEY_SIZE:
                raise KeyringError(
                    f"{where} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_SIZE}"
                )
            keys[key_id] = key
        active = active_key_id.strip()
        if active not in keys:
            raise KeyringError(
                f"PIPWORKS_ENCRYPTION_ACTIVE_KEY {active!r} is not one of the key ids in "
                f"PIPWORKS_ENCRYPTION_KEYS ({', '.join(keys)})"
                if _is_valid_key_id(active)
                else "PIPWORKS_ENCRYPTION_ACTIVE_KEY is not a valid key id"
            )
        return cls(keys, active)

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._aeads)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._aeads

    def __iter__(self) -> Iterator[str]:
        return iter(self._aeads)

    def __len__(self) -> int:
        return len(self._aeads)

    def __repr__(self) -> str:
        ids = ", ".join(repr(k) for k in sorted(self._aeads))
        return f"Keyring(key_ids=[{ids}], active_key_id={self._active_key_id!r})"

    __str__ = __repr__

    def __reduce__(self) -> object:
        # Pickling would write raw keys into caches, task queues or crash dumps.
        raise TypeError("Keyring cannot be pickled")

    def __copy__(self) -> Keyring:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Keyring:
        return self  # immutable; also keeps copy.deepcopy() off the pickle path

    def _aead(self, key_id: str) -> AESGCM | None:
        return self._aeads.get(key_id)

    def _active_aead(self) -> AESGCM:
        return self._aeads[self._active_key_id]


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes((BLOB_VERSION, len(encoded))) + encoded


def _require_context(context: bytes) -> bytes:
    if not isinstance(context, bytes | bytearray | memoryview):
        raise TypeError("context must be bytes")
    if not context:
        # An empty context would let a blob move freely between rows and columns.
        raise ValueError("context must be non-empty, e.g. b'identity.totp_secret:<user_id>'")
    return bytes(context)


def _parse(blob: bytes) -> tuple[bytes, str, bytes, bytes]:
    """Split a blob into (header, key id, nonce, ciphertext+tag) or raise DecryptionError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise DecryptionError("encrypted value must be bytes")
    blob = bytes(blob)
    if len(blob) < 2:
        raise DecryptionError("encrypted value is truncated")
    version, id_len = blob[0], blob[1]
    if version != BLOB_VERSION:
        raise DecryptionError(f"unsupported encrypted value version {version}")
    if not 1 <= id_len <= MAX_KEY_ID_LENGTH:
        raise DecryptionError("encrypted value has an invalid key id length")
    header_end = 2 + id_len
    if len(blob) < header_end + NONCE_SIZE + TAG_SIZE:
        raise DecryptionError("encrypted value is truncated")
    try:
        key_id = blob[2:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("encrypted value has an invalid key id") from None
    if not _is_valid_key_id(key_id):
        raise DecryptionError("encrypted value has an invalid key id")
    nonce_end = header_end + NONCE_SIZE
    return blob[:header_end], key_id, blob[header_end:nonce_end], blob[nonce_end:]


class FieldCipher:
    """Encrypts and decrypts single column values under a :class:`Keyring`.

    ``context`` must identify where the value lives (table/column and row id): it is
    authenticated, so a blob only opens in the place it was written for.
    """

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def __repr__(self) -> str:
        return f"FieldCipher({self._keyring!r})"

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Seal ``plaintext`` under the active key with a fresh random nonce."""
        aad_context = _require_context(context)
        header = _header(self._keyring.active_key_id)
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._keyring._active_aead().encrypt(nonce, bytes(plaintext), header + aad_context)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, context: bytes) -> bytes:
        """Open a blob sealed under any key in the keyring, for the same ``context``."""
        aad_context = _require_context(context)
        header, key_id, nonce, sealed = _parse(blob)
        aead = self._keyring._aead(key_id)
        if aead is None:
            raise DecryptionError(f"encrypted value uses key id {key_id!r}, not in the keyring")
        try:
            return aead.decrypt(nonce, sealed, header + aad_context)
        except InvalidTag:
            raise DecryptionError(
                "encrypted value failed authentication "
                "(tampered, wrong context, or a different key under the same id)"
            ) from None

    def encrypt_text(self, plaintext: str, *, context: bytes) -> bytes:
        """UTF-8 encode and :meth:`encrypt`."""
        return self.encrypt(plaintext.encode("utf-8"), context=context)

    def decrypt_text(self, blob: bytes, *, context: bytes) -> str:
        """:meth:`decrypt` and UTF-8 decode."""
        plaintext = self.decrypt(blob, context=context)
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            # `from None`: the UnicodeDecodeError carries the plaintext bytes.
            raise DecryptionError("decrypted value is not UTF-8 text") from None

    def key_id_of(self, blob: bytes) -> str:
        """The id of the key that sealed ``blob`` (header only; nothing is authenticated)."""
        return _parse(blob)[1]

    def needs_rotation(self, blob: bytes) -> bool:
        """True if ``blob`` was sealed under a key other than the active one."""
        return self.key_id_of(blob) != self._keyring.active_key_id

    def rotate(self, blob: bytes, *, context: bytes) -> bytes:
        """Decrypt ``blob`` and re-seal it under the active key with a fresh nonce.

        Always re-encrypts (and so always authenticates); use :meth:`needs_rotation`
        first to skip rows that are already current.
        """
        return self.encrypt(self.decrypt(blob, context=context), context=context)
