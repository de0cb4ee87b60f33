"""How the demo prints: each step as it finishes, then one summary table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TextIO

from pipworks_devstack.demo.results import StepRecord

__all__ = ["print_step", "print_summary", "short"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def short(text: str) -> str:
    """UUIDs cut to their first 8 characters (enough to grep the logs with)."""
    return _UUID.sub(lambda m: m.group(0)[:8], text)


def print_step(record: StepRecord, out: TextIO) -> None:
    print(f"[{record.number:2d}] {record.title}  ({record.elapsed:.1f} s)", file=out)
    for key, value in {**record.ids, **record.amounts}.items():
        print(f"       {key:<20} {value}", file=out)
    out.flush()


def _cells(record: StepRecord) -> tuple[str, str, str, str, str]:
    ids = " ".join(f"{k}={short(v)}" for k, v in record.ids.items())
    amounts = " ".join(f"{k}={v}" for k, v in record.amounts.items() if not k.endswith(" why"))
    return str(record.number), record.title, ids, amounts, f"{record.elapsed:.1f}"


def print_summary(records: Sequence[StepRecord], out: TextIO, *, failed: str = "") -> None:
    rows = [("#", "step", "ids", "amounts", "s"), *(_cells(r) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    widths[2] = min(widths[2], 70)
    line = "-+-".join("-" * w for w in widths)
    print("\n" + line, file=out)
    for index, row in enumerate(rows):
        cells = [row[i][: widths[i]].ljust(widths[i]) for i in range(5)]
        print(" | ".join(cells).rstrip(), file=out)
        if index == 0:
            print(line, file=out)
    print(line, file=out)
    total = sum(r.elapsed for r in records)
    verdict = f"FAILED at: {failed}" if failed else "golden path complete"
    print(f"{len(records)} steps in {total:.1f} s: {verdict}", file=out)
    out.flush()
