"""The simulator's composition: state, price feed, sessions, activity and persistence,
with the background tasks that keep them moving."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pipworks_mtbridge.mt5sim.activity import ActivityManager
from pipworks_mtbridge.mt5sim.auth import AuthSessions
from pipworks_mtbridge.mt5sim.persistence import read_file, write_file
from pipworks_mtbridge.mt5sim.pricing import PriceFeed
from pipworks_mtbridge.mt5sim.state import SimState
from pipworks_platform.logging import get_logger

__all__ = ["SimConfig", "Simulator"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SimConfig:
    manager_login: int = 1000
    manager_password: str = ""
    state_file: Path | None = None
    seed: int = 1
    tick_interval: float = 0.25  # seconds between price steps (0 = prices move on /sim/tick)
    save_interval: float = 5.0  # seconds between saves of a changed state
    lie: bool = False  # answer the client's challenge wrongly (tests of the client only)

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return (
            f"SimConfig(manager_login={self.manager_login}, state_file={self.state_file}, "
            f"seed={self.seed}, lie={self.lie})"
        )


class Simulator:
    """Everything one simulated MT5 server holds; handlers and the CLI share it."""

    def __init__(self, config: SimConfig) -> None:
        if not config.manager_password:
            raise ValueError("a manager password is required")
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - simulation, not security
        self.feed = PriceFeed(self.rng)
        self.state = SimState(self.feed, self.rng)
        self.sessions = AuthSessions(config.manager_login, config.manager_password, lie=config.lie)
        self.activities = ActivityManager(self.state)
        self.fail_next = 0  # the next N /api requests answer fail_status (outage tests)
        self.fail_status = 503
        self.started = time.time()
        self._saved_changes = 0
        self._save_lock = asyncio.Lock()
        if config.state_file is not None and read_file(config.state_file, self.state):
            self._saved_changes = self.state.changes

    async def save(self) -> bool:
        """Persist the state if there is a state file; whether anything was written."""
        path = self.config.state_file
        if path is None:
            return False
        async with self._save_lock:
            mark = self.state.changes
            await write_file(path, self.state)
            self._saved_changes = mark
        return True

    def tick(self, steps: int = 1) -> int:
        """Move prices ``steps`` steps and apply stop-outs; the number of stop-out deals."""
        self.feed.step(steps)
        return len(self.state.enforce_stop_out())

    async def background(self) -> AsyncIterator[None]:
        """aiohttp cleanup context: price ticks, periodic saves, session sweeping; on exit,
        stops activities and saves one last time."""
        tasks = [
            asyncio.create_task(self._every(self.config.tick_interval, self._tick_once)),
            asyncio.create_task(self._every(self.config.save_interval, self._save_if_changed)),
            asyncio.create_task(self._every(5.0, self._sweep)),
        ]
        try:
            yield
        finally:
            await self.activities.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.save()

    async def _tick_once(self) -> None:
        self.tick()

    async def _save_if_changed(self) -> None:
        if self.state.changes != self._saved_changes:
            await self.save()

    async def _sweep(self) -> None:
        self.sessions.sweep()

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[None]]) -> None:
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                log.exception("mt5sim background job failed", job=job.__name__)
