"""The MT5 Web API wire protocol: the handshake hash and the JSON reply envelope.

Handshake (DESIGN.md §4), every value as raw bytes::

    ph              = MD5( MD5(UTF-16LE(password)) ‖ "WebAPI" )
    srv_rand_answer = MD5( ph ‖ srv_rand )      # proves the client knows the password
    cli_rand_answer = MD5( ph ‖ cli_rand )      # proves the server knows it too

MD5 is what the MT5 protocol specifies, so it is used here as an interoperability
requirement, not chosen as a password hash; the link itself is protected by TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from decimal import Decimal
from typing import Any

from pipworks_mtbridge.mt5.errors import Mt5Error, Retcode, error_for_retcode, parse_retcode

__all__ = [
    "CLI_RAND_BYTES",
    "PasswordHash",
    "answer_for",
    "decode_hex",
    "new_cli_rand",
    "parse_envelope",
    "password_hash",
]

CLI_RAND_BYTES = 16
_SUFFIX = b"WebAPI"


def _md5(data: bytes) -> bytes:
    # MD5 is mandated by the MT5 Web API handshake; not a security choice of ours.
    return hashlib.md5(data, usedforsecurity=False).digest()


def password_hash(password: str) -> bytes:
    """``ph = MD5(MD5(UTF-16LE(password)) ‖ "WebAPI")``."""
    return _md5(_md5(password.encode("utf-16-le")) + _SUFFIX)


def answer_for(ph: bytes, rand: bytes) -> bytes:
    """``MD5(ph ‖ rand)``: the answer to a random challenge."""
    return _md5(ph + rand)


def new_cli_rand() -> bytes:
    """A fresh random challenge for the server."""
    return secrets.token_bytes(CLI_RAND_BYTES)


def decode_hex(value: Any, field: str) -> bytes:
    """A hex string field of a reply as bytes; ``Mt5Error`` if it is not hex."""
    if not isinstance(value, str) or not value:
        raise Mt5Error(f"malformed reply: {field} is missing")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Mt5Error(f"malformed reply: {field} is not hex") from None


class PasswordHash:
    """The manager's ``ph``; the only form in which the password is kept.

    ``ph`` is as good as the password for this protocol, so it never appears in a
    ``repr``, a log line or an exception.
    """

    __slots__ = ("_ph",)

    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("the manager password is empty")
        self._ph = password_hash(password)

    def answer(self, rand: bytes) -> bytes:
        return answer_for(self._ph, rand)

    def verify(self, rand: bytes, answer: bytes) -> bool:
        """Whether ``answer`` is the right answer to our challenge ``rand``."""
        return hmac.compare_digest(self.answer(rand), answer)

    def __repr__(self) -> str:
        return "PasswordHash(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("PasswordHash cannot be pickled")


def parse_envelope(body: bytes) -> dict[str, Any]:
    """The JSON reply as a dict, or the typed error its retcode stands for.

    Non-integral JSON numbers become ``Decimal``; a reply that is not a JSON object with a
    ``retcode`` is a protocol violation (``Mt5Error``).
    """
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise Mt5Error("malformed reply: not JSON") from None
    if not isinstance(data, dict):
        raise Mt5Error("malformed reply: not a JSON object")
    code, message = parse_retcode(data.get("retcode"))
    if code not in (Retcode.OK, Retcode.OK_NONE):
        raise error_for_retcode(code, message)
    return data
