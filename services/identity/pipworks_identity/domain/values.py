"""Value objects of the identity domain: parsed, normalised, or rejected with a reason.

Each parser takes raw text and returns the canonical value, or raises
:class:`InvalidValue` with a description fit to show the caller; the API layer turns
that into a field violation naming the request field.
"""

from __future__ import annotations

import re
import uuid

from pipworks_identity.domain.countries import COUNTRY_CODES

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit minus the angle brackets
MAX_LOCAL_PART_LENGTH = 64
MAX_REFERRAL_CODE_LENGTH = 64

# RFC 5322 dot-atom local part (no quoted strings: nobody types them into a portal).
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_REFERRAL_CODE = re.compile(r"[A-Za-z0-9_-]+")


class InvalidValue(ValueError):
    """Raw input that is not a valid value; the message is safe to show the caller."""


def parse_email(raw: str) -> str:
    """A login email: trimmed, lower-cased, ASCII, ``local@domain.tld``.

    Internationalised domains are accepted in their punycode (``xn--``) form only, which
    keeps look-alike Unicode addresses from becoming distinct logins.
    """
    email = raw.strip().lower()
    if not email:
        raise InvalidValue("is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidValue(f"must be at most {MAX_EMAIL_LENGTH} characters")
    if not email.isascii():
        raise InvalidValue("must be an ASCII address (use the xn-- form of the domain)")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InvalidValue("must be an address like name@example.com")
    if len(local) > MAX_LOCAL_PART_LENGTH or not _LOCAL_PART.fullmatch(local):
        raise InvalidValue("has an invalid part before the @")
    labels = domain.split(".")
    if (
        len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TOP_LEVEL.fullmatch(labels[-1])
    ):
        raise InvalidValue("has an invalid domain")
    return email


def parse_country_code(raw: str) -> str:
    """An assigned ISO 3166-1 alpha-2 code, upper-cased."""
    code = raw.strip().upper()
    if not code:
        raise InvalidValue("is required")
    if code not in COUNTRY_CODES:
        raise InvalidValue("must be an ISO 3166-1 alpha-2 country code, like GB or CY")
    return code


def parse_phone(raw: str) -> str:
    """A phone number in E.164 (``+35799123456``); spaces, dots and dashes are dropped."""
    phone = re.sub(r"[\s().-]", "", raw)
    if not _E164.fullmatch(phone):
        raise InvalidValue("must be an E.164 number like +35799123456")
    return phone


def parse_referral_code(raw: str) -> str:
    """An IB referral code as the ib service issues them: letters, digits, ``_`` and ``-``."""
    code = raw.strip()
    if len(code) > MAX_REFERRAL_CODE_LENGTH:
        raise InvalidValue(f"must be at most {MAX_REFERRAL_CODE_LENGTH} characters")
    if not _REFERRAL_CODE.fullmatch(code):
        raise InvalidValue("may contain only letters, digits, '_' and '-'")
    return code


def parse_uuid(raw: str) -> uuid.UUID:
    """An id the service issued (a UUID in its canonical text form)."""
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidValue("must be a UUID") from None
