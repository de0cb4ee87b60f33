"""The expiry scheduler: a background loop that runs one expiry pass per interval.

Time comes from the service clock (injectable): tests move the clock and call
:meth:`ExpiryScheduler.tick` or wake the loop.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from pipworks_kyc.handlers.context import Deps
from pipworks_kyc.handlers.documents import ExpiryPass, run_expiry

log = structlog.get_logger(__name__)


class ExpiryScheduler:
    def __init__(self, deps: Deps, interval_seconds: float) -> None:
        self._deps = deps
        self._interval = interval_seconds
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: asyncio.Future[None] | None = None
        self.passes = 0

    async def tick(self) -> ExpiryPass:
        result = await run_expiry(self._deps)
        self.passes += 1
        if result.expiring or result.expired:
            log.info(
                "expiry pass",
                expiring=result.expiring,
                expired=result.expired,
                lowered=result.lowered,
            )
        return result

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._running = asyncio.get_running_loop().create_future()
        try:
            while not self._stopping.is_set():
                try:
                    await self.tick()
                except Exception:  # a bad pass must not end the loop; it runs again later
                    log.exception("expiry pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)
                self._wake.clear()
        finally:
            self._running.set_result(None)

    async def stop_and_wait(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._running is not None:
            await self._running
