"""One holder among replicas: a PostgreSQL session advisory lock on its own connection.

Work that must have a single active process per service (an ordered consumer: ordering
needs one puller, and its rewind recreates the shared durable) runs only while the lock
is held. The lock goes with the connection, so a holder that crashes or loses its
database releases it and a standby replica takes over within a poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import asyncpg
import structlog

from pipworks_platform.db.engine import libpq_dsn

log = structlog.get_logger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    def __init__(self, database_url: str, name: str, *, poll_interval: float = 1.0) -> None:
        self._dsn = libpq_dsn(database_url)
        self.name = name
        self._key = lock_key(name)
        self._poll_interval = poll_interval
        self._conn: asyncpg.Connection | None = None

    async def acquire(self, stopping: asyncio.Event) -> bool:
        """Wait until this process holds the lock (True) or ``stopping`` is set (False)."""
        while not stopping.is_set():
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn, timeout=5)
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    log.info("leadership acquired", lock=self.name)
                    return True
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("leadership: cannot reach postgres", lock=self.name, error=repr(exc))
                await self.release()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._poll_interval)
        return False

    async def still_held(self) -> bool:
        """False once the lock's connection is gone (and with it the lock)."""
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
