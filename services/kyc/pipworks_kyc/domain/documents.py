"""Documents: what a file is (sniffed from its bytes, never trusted from the caller) and
when it expires."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

_MAGIC = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"%PDF-", PDF),
)
SNIFF_BYTES = 8


def sniff_content_type(head: bytes) -> str | None:
    """The content type the leading bytes announce, or None when not JPEG, PNG or PDF."""
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return None


class Status(StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"
    EXPIRED = "expired"


@dataclass(frozen=True)
class DocumentInfo:
    """A document's metadata, decrypted."""

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    content_type: str
    size: int
    status: Status
    number: str
    issued_on: date | None
    expires_on: date | None
    expiring_notified: bool


class ExpiryStep(StrEnum):
    NONE = "none"
    EXPIRING = "expiring"
    EXPIRED = "expired"


def expiry_step(doc: DocumentInfo, today: date, notice_days: int) -> ExpiryStep:
    """What the expiry scheduler owes this document today."""
    if doc.status is not Status.ACTIVE or doc.expires_on is None:
        return ExpiryStep.NONE
    if doc.expires_on <= today:
        return ExpiryStep.EXPIRED
    if not doc.expiring_notified and (doc.expires_on - today).days <= notice_days:
        return ExpiryStep.EXPIRING
    return ExpiryStep.NONE


def is_fresh(doc: DocumentInfo, max_age_days: int, today: date) -> bool:
    """A proof of address and the like must not be older than ``max_age_days``."""
    if max_age_days <= 0:
        return True
    return doc.issued_on is not None and (today - doc.issued_on).days <= max_age_days
