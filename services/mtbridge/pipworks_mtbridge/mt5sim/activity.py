"""Synthetic market activity: deals for chosen logins at a configurable rate.

Each generated deal either opens a position (deal IN) or closes one of the login's open
positions with its realised profit (deal OUT). A login whose trading is disabled (or that
is not enabled) gets no new deals; a login without free margin only closes.

``logins: "*"`` (ambient activity) trades every login that may trade and has money or
open positions, chosen afresh for each deal, so logins added later join in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipworks_mtbridge.mt5sim.model import BUY, SELL, Deal, SimError, bad_params
from pipworks_mtbridge.mt5sim.state import SimState

__all__ = ["EVERY_LOGIN", "ActivityManager", "ActivitySpec", "generate_deal"]

EVERY_LOGIN = "*"

_LOT_CHOICES = (1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000, 100_000_000)
_TICK = 0.02  # seconds between generation rounds


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    logins: tuple[int, ...]  # empty: every login that can trade (``"*"``)
    deals_per_second: float
    symbols: tuple[str, ...]
    open_close_mix: float = 0.5  # probability that a deal opens (when it could close)
    duration: float | None = None  # seconds
    count: int | None = None  # total deals

    @classmethod
    def parse(cls, body: dict[str, Any], known_symbols: Sequence[str]) -> ActivitySpec:
        try:
            chosen = body["logins"]
            logins = () if chosen == EVERY_LOGIN else tuple(int(x) for x in chosen)
            rate = float(body["deals_per_second"])
            symbols = tuple(str(s) for s in body.get("symbols") or known_symbols)
            mix = float(body.get("open_close_mix", 0.5))
            duration = None if body.get("duration") is None else float(body["duration"])
            count = None if body.get("count") is None else int(body["count"])
        except (KeyError, TypeError, ValueError):
            raise bad_params("logins and deals_per_second are required") from None
        if (
            (not logins and body["logins"] != EVERY_LOGIN)
            or not 0 < rate <= 100_000
            or not 0 <= mix <= 1
            or any(s not in known_symbols for s in symbols)
            or (duration is not None and duration <= 0)
            or (count is not None and count <= 0)
        ):
            raise bad_params("invalid activity")
        return cls(logins, rate, symbols, mix, duration, count)

    @classmethod
    def ambient(cls, deals_per_second: float, known_symbols: Sequence[str]) -> ActivitySpec:
        """Every login that can trade, at a background rate."""
        return cls.parse(
            {"logins": EVERY_LOGIN, "deals_per_second": deals_per_second}, known_symbols
        )


@dataclass(slots=True)
class _Activity:
    id: int
    spec: ActivitySpec
    started: float
    produced: int = 0
    skipped: int = 0
    running: bool = True
    per_login: dict[int, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "logins": list(self.spec.logins) if self.spec.logins else EVERY_LOGIN,
            "deals_per_second": self.spec.deals_per_second,
            "symbols": list(self.spec.symbols),
            "open_close_mix": self.spec.open_close_mix,
            "duration": self.spec.duration,
            "count": self.spec.count,
            "produced": self.produced,
            "skipped": self.skipped,
            "running": self.running,
            "per_login": {str(k): v for k, v in self.per_login.items()},
        }


def generate_deal(
    state: SimState, login: int, symbols: Sequence[str], open_probability: float
) -> Deal | None:
    """One deal for ``login``: open or close; ``None`` when the login may not trade."""
    user = state.users.get(login)
    if user is None or user.trade_disabled:
        return None
    rng = state.rng
    open_positions = state.positions_by_login.get(login)
    if open_positions and rng.random() >= open_probability:
        position_id = rng.choice(list(open_positions))
        return state.close_position(position_id)
    symbol = rng.choice(symbols)
    action = rng.choice((BUY, SELL))
    for volume in sorted(_LOT_CHOICES[: rng.randint(1, len(_LOT_CHOICES))], reverse=True):
        try:
            return state.open_position(login, symbol, action, volume)
        except SimError as exc:
            if exc.retcode != 10019:
                raise
    if open_positions:  # no margin for a new position: close one instead
        return state.close_position(rng.choice(list(open_positions)))
    return None


def _tradable_logins(state: SimState) -> list[int]:
    """Logins that may trade and have money to open or positions to close."""
    return [
        login
        for login, user in state.users.items()
        if not user.trade_disabled and (user.balance > 0 or state.positions_by_login.get(login))
    ]


class ActivityManager:
    """Runs activities as tasks; each spreads its rate evenly over time."""

    def __init__(self, state: SimState) -> None:
        self._state = state
        self._activities: dict[int, _Activity] = {}
        self._ids = itertools.count(1)

    def start(self, spec: ActivitySpec) -> dict[str, Any]:
        activity = _Activity(next(self._ids), spec, time.monotonic())
        activity.task = asyncio.create_task(self._run(activity), name=f"activity-{activity.id}")
        self._activities[activity.id] = activity
        return activity.describe()

    def list(self) -> list[dict[str, Any]]:
        return [a.describe() for a in self._activities.values()]

    def get(self, activity_id: int) -> dict[str, Any] | None:
        activity = self._activities.get(activity_id)
        return None if activity is None else activity.describe()

    async def stop(self, activity_id: int | None = None) -> int:
        """Stop one activity (or all); how many were stopped."""
        targets = [
            a
            for a in self._activities.values()
            if a.running and (activity_id is None or a.id == activity_id)
        ]
        for activity in targets:
            activity.running = False
            if activity.task is not None:
                activity.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await activity.task
        return len(targets)

    async def _run(self, activity: _Activity) -> None:
        spec = activity.spec
        budget = 0.0
        last = time.monotonic()
        turn = itertools.cycle(spec.logins) if spec.logins else None
        try:
            while activity.running:
                await asyncio.sleep(_TICK)
                now = time.monotonic()
                budget += spec.deals_per_second * (now - last)
                last = now
                due = int(budget)
                budget -= due
                if spec.count is not None:
                    due = min(due, spec.count - activity.produced)
                for _ in range(due):
                    if turn is not None:
                        login = next(turn)
                    else:
                        candidates = _tradable_logins(self._state)
                        if not candidates:
                            activity.skipped += 1
                            continue
                        login = self._state.rng.choice(candidates)
                    deal = generate_deal(self._state, login, spec.symbols, spec.open_close_mix)
                    if deal is None:
                        activity.skipped += 1
                        continue
                    activity.produced += 1
                    activity.per_login[login] = activity.per_login.get(login, 0) + 1
                if (spec.count is not None and activity.produced >= spec.count) or (
                    spec.duration is not None and now - activity.started >= spec.duration
                ):
                    break
        finally:
            activity.running = False
