"""The audit log: an append-only, hash-chained record of staff actions and decisions.

Entry n stores ``hash_n = SHA-256(canonical_json(entry_n) || hash_{n-1})`` with the
genesis predecessor 64 zeros. Changing, inserting or deleting any entry changes every
hash after it, so recomputing the chain finds the first entry that no longer matches.
Canonical JSON (sorted keys, no whitespace, UTF-8) makes the digest independent of how
the database hands the details back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class AuditRecord:
    """What happened, before it takes its place in the chain."""

    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_json(self.details)


@dataclass(frozen=True)
class AuditEntry:
    sequence: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries_checked: int
    first_broken_sequence: int = 0


def entry_digest(
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "sequence": sequence,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
    }
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8") + prev_hash.encode("ascii")).hexdigest()


def append(head: AuditEntry | None, record: AuditRecord, occurred_at: datetime) -> AuditEntry:
    """The entry that follows ``head`` (or starts the chain) for ``record``."""
    sequence = 1 if head is None else head.sequence + 1
    prev_hash = GENESIS_HASH if head is None else head.hash
    # Microsecond precision is what PostgreSQL stores; hash exactly what will be read back.
    occurred_at = occurred_at.astimezone(UTC)
    details = dict(record.details)
    return AuditEntry(
        sequence=sequence,
        occurred_at=occurred_at,
        actor=record.actor,
        action=record.action,
        subject=record.subject,
        details=details,
        prev_hash=prev_hash,
        hash=entry_digest(
            sequence=sequence,
            occurred_at=occurred_at,
            actor=record.actor,
            action=record.action,
            subject=record.subject,
            details=details,
            prev_hash=prev_hash,
        ),
    )


class ChainVerifier:
    """Checks entries fed in sequence order; works in batches over logs of any size."""

    def __init__(self) -> None:
        self._expected_sequence = 1
        self._prev_hash = GENESIS_HASH
        self._checked = 0
        self._first_broken = 0

    def feed(self, entry: AuditEntry) -> bool:
        """Check one entry; returns False once the chain is known to be broken."""
        if self._first_broken:
            return False
        self._checked += 1
        recomputed = entry_digest(
            sequence=entry.sequence,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            details=entry.details,
            prev_hash=entry.prev_hash,
        )
        if (
            entry.sequence != self._expected_sequence
            or entry.prev_hash != self._prev_hash
            or entry.hash != recomputed
        ):
            self._first_broken = entry.sequence
            return False
        self._expected_sequence = entry.sequence + 1
        self._prev_hash = entry.hash
        return True

    def report(self) -> ChainReport:
        return ChainReport(
            intact=not self._first_broken,
            entries_checked=self._checked,
            first_broken_sequence=self._first_broken,
        )


def verify_chain(entries: Iterable[AuditEntry]) -> ChainReport:
    verifier = ChainVerifier()
    for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.report()


def _check_json(value: object, depth: int = 0) -> None:
    """Details must survive a JSONB round trip unchanged: no floats, no odd types."""
    if depth > 8:
        raise ValueError("audit details are nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("audit detail keys must be strings")
            _check_json(item, depth + 1)
        return
    raise ValueError(f"audit details cannot hold {type(value).__name__} values")
