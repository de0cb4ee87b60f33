"""The audit hash chain: building it, and finding the first entry that was tampered with."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from pipworks_platform.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    append,
    entry_digest,
    verify_chain,
)

START = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)


def chain(length: int = 5) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for n in range(length):
        record = AuditRecord(
            actor="admin-1", action="role.granted", subject=f"user-{n}", details={"role": "ib"}
        )
        entries.append(
            append(entries[-1] if entries else None, record, START + timedelta(seconds=n))
        )
    return entries


def test_entries_link_to_their_predecessor() -> None:
    entries = chain()
    assert [e.sequence for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert verify_chain(entries).intact
    assert verify_chain(entries).entries_checked == 5


def test_the_digest_ignores_key_order_but_not_content() -> None:
    common = {"sequence": 1, "occurred_at": START, "actor": "a", "action": "x", "subject": "s"}
    one = entry_digest(**common, details={"a": 1, "b": 2}, prev_hash=GENESIS_HASH)
    two = entry_digest(**common, details={"b": 2, "a": 1}, prev_hash=GENESIS_HASH)
    three = entry_digest(**common, details={"a": 1, "b": 3}, prev_hash=GENESIS_HASH)
    assert one == two != three


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: dataclasses.replace(e, details={"role": "admin"}),
        lambda e: dataclasses.replace(e, actor="someone-else"),
        lambda e: dataclasses.replace(e, occurred_at=e.occurred_at + timedelta(microseconds=1)),
        lambda e: dataclasses.replace(e, hash="f" * 64),
    ],
)
def test_a_changed_entry_is_the_first_broken_link(tamper) -> None:
    entries = chain()
    entries[2] = tamper(entries[2])
    report = verify_chain(entries)
    assert not report.intact
    assert report.first_broken_sequence == 3


def test_a_rehashed_forgery_breaks_the_next_link() -> None:
    entries = chain()
    forged = append(
        entries[1], AuditRecord(actor="mallory", action="role.granted", subject="me"), START
    )
    entries[2] = forged  # consistent in itself, but entry 4 still points at the original
    assert verify_chain(entries).first_broken_sequence == 4


def test_a_deleted_entry_breaks_the_chain_where_it_was() -> None:
    entries = chain()
    del entries[1]
    assert verify_chain(entries).first_broken_sequence == 3


def test_details_must_survive_a_json_round_trip() -> None:
    with pytest.raises(ValueError, match="float"):
        AuditRecord(actor="a", action="x", subject="s", details={"amount": 1.5})
