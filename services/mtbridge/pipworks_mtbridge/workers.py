"""Background loops of the bridge: deal sync and margin monitoring, per server.

A pass that fails (platform down, database away) is logged and retried on the next
tick; the sync's cursor only moves in committed transactions, so it resumes exactly
where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from pipworks_mtbridge.handlers import Deps, TradingServer
from pipworks_mtbridge.handlers.margin import check_margins
from pipworks_mtbridge.handlers.sync import sync_server
from pipworks_mtbridge.metrics import SYNC_FAILURES, SYNC_LAG
from pipworks_platform.backoff import Backoff

log = structlog.get_logger(__name__)

STOP_WAIT_SECONDS = 10.0

Step = Callable[[Deps, TradingServer], Awaitable[object]]


class ServerLoop:
    """Run ``step`` for every server every ``interval`` seconds until stopped."""

    def __init__(self, name: str, deps: Deps, step: Step, interval: float) -> None:
        self.name = name
        self._deps = deps
        self._step = step
        self._interval = interval
        self._stopping = asyncio.Event()
        self._backoff = {server: Backoff(maximum=30.0) for server in deps.servers}
        self._not_before: dict[str, float] = {}
        self._running = False
        self._finished = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def stop_and_wait(self) -> None:
        """Stop hook: let the pass in hand finish before the platforms are closed."""
        self.stop()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), STOP_WAIT_SECONDS)

    async def run(self) -> None:
        self._running = True
        try:
            while not self._stopping.is_set():
                for server in self._deps.servers.values():
                    if self._stopping.is_set():
                        return
                    await self._run_step(server)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)
        finally:
            self._finished.set()

    async def _run_step(self, server: TradingServer) -> None:
        if time.monotonic() < self._not_before.get(server.name, 0.0):
            return
        started = time.time()
        try:
            await self._step(self._deps, server)
        except Exception as exc:  # any failure: log, back off, try again later
            delay = self._backoff[server.name].next_delay()
            self._not_before[server.name] = time.monotonic() + delay
            self.on_failure(server, exc, delay)
            return
        self._backoff[server.name].reset()
        self.on_success(server, started)

    def on_success(self, server: TradingServer, started: float) -> None:
        pass

    def on_failure(self, server: TradingServer, exc: Exception, retry_in: float) -> None:
        log.warning(
            "background pass failed; will retry",
            loop=self.name,
            server=server.name,
            retry_in=round(retry_in, 2),
            error=f"{type(exc).__name__}: {exc}"[:500],
        )


class DealSyncLoop(ServerLoop):
    def __init__(self, deps: Deps, interval: float) -> None:
        super().__init__("deal sync", deps, sync_server, interval)
        self._synced_at = {name: time.time() for name in deps.servers}
        for name in deps.servers:
            SYNC_LAG.labels(name).set_function(
                lambda name=name: time.time() - self._synced_at[name]
            )

    def on_success(self, server: TradingServer, started: float) -> None:
        self._synced_at[server.name] = started

    def on_failure(self, server: TradingServer, exc: Exception, retry_in: float) -> None:
        SYNC_FAILURES.labels(server.name).inc()
        super().on_failure(server, exc, retry_in)


class MarginLoop(ServerLoop):
    def __init__(self, deps: Deps, interval: float) -> None:
        super().__init__("margin check", deps, check_margins, interval)
