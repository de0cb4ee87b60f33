"""The background job that runs the clean-up pass periodically, for as long as the
process serves. A database outage only skips passes; the next one catches up."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from pipworks_identity.handlers import Deps, housekeeping
from pipworks_platform.db.errors import is_transient_db_error

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL = timedelta(minutes=10)


class Housekeeper:
    def __init__(self, deps: Deps, interval: timedelta = DEFAULT_INTERVAL) -> None:
        self._deps = deps
        self._interval = interval.total_seconds()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                deleted = await housekeeping.purge(self._deps)
            except Exception as exc:
                if not is_transient_db_error(exc):
                    raise
                log.warning("clean-up pass skipped: database unavailable", error=repr(exc))
            else:
                if deleted:
                    log.info("expired rows purged", **deleted)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def stop(self) -> None:
        self._stopping.set()
