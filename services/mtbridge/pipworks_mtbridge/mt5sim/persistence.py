"""Saving the simulator's state to a JSON file and loading it back.

Writes are atomic (a temporary file, fsync, then rename), so a crash mid-save leaves the
previous file intact. Decimals are stored as strings.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import asdict, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipworks_mtbridge.mt5sim.model import Deal, Group, Position, User
from pipworks_mtbridge.mt5sim.state import SimState

__all__ = ["FORMAT_VERSION", "dump_state", "load_state", "read_file", "write_file"]

FORMAT_VERSION = 1
_DEAL_FIELDS = [f.name for f in fields(Deal)]


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _decimals(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    result = dict(raw)
    for f in fields(cls):
        if f.type in ("Decimal", Decimal) and f.name in result:
            result[f.name] = Decimal(result[f.name])
    return result


def dump_state(state: SimState) -> dict[str, Any]:
    """A JSON-ready snapshot; deals are stored as rows to keep the file small."""
    return {
        "version": FORMAT_VERSION,
        "next_login": state.next_login,
        "next_ticket": state.next_ticket,
        "last_time_msc": state.last_time_msc,
        "prices": {k: format(v, "f") for k, v in state.feed.bids().items()},
        "groups": [asdict(g) for g in state.groups.values()],
        "users": [asdict(u) for u in state.users.values()],
        "positions": [asdict(p) for p in state.positions.values()],
        "deal_fields": _DEAL_FIELDS,
        "deals": [[getattr(d, name) for name in _DEAL_FIELDS] for d in state.deals],
    }


def load_state(data: dict[str, Any], state: SimState) -> None:
    """Replace ``state``'s contents with a snapshot made by ``dump_state``."""
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported state file version {data.get('version')!r}")
    state.groups = {
        g["name"].lower(): Group(**_decimals(Group, g)) for g in data.get("groups", [])
    } or state.groups
    state.users = {}
    for raw in data.get("users", []):
        user = User(**_decimals(User, raw))
        state.users[user.login] = user
    for raw in data.get("positions", []):
        state.insert_position(Position(**_decimals(Position, raw)))
    names = data.get("deal_fields", _DEAL_FIELDS)
    for row in data.get("deals", []):
        state.record_deal(Deal(**_decimals(Deal, dict(zip(names, row, strict=True)))))
    state.feed.load_bids(data.get("prices", {}))
    state.next_login = max(state.next_login, int(data.get("next_login", 0)))
    state.next_ticket = max(state.next_ticket, int(data.get("next_ticket", 0)))
    state.last_time_msc = max(state.last_time_msc, int(data.get("last_time_msc", 0)))
    state.changes = 0


def read_file(path: Path, state: SimState) -> bool:
    """Load ``path`` into ``state`` if it exists; whether it did."""
    if not path.exists():
        return False
    with path.open("r", encoding="utf-8") as fh:
        load_state(json.load(fh), state)
    return True


def _write_sync(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def write_file(path: Path, state: SimState) -> None:
    """Snapshot on the loop (consistent), encode and write in a thread."""
    snapshot = dump_state(state)
    await asyncio.to_thread(lambda: _write_sync(path, json.dumps(snapshot, default=_json_default)))
