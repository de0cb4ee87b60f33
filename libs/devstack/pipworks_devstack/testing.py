"""Helpers behind the test suite's fixtures (``tests/conftest.py``), kept here so they are
tested themselves and usable from any test package.

They are synchronous on purpose: fixtures that use them work for sync and async tests
alike, whatever event loop pytest-asyncio is running.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import nats

from pipworks_devstack._process import accepts_connections, free_port
from pipworks_devstack.postgres import EmbeddedPostgres

__all__ = [
    "accepts_connections",
    "free_port",
    "fresh_database",
    "purge_jetstream",
    "run_sync",
]

_T = TypeVar("_T")


@contextmanager
def fresh_database(postgres: EmbeddedPostgres, prefix: str = "t_") -> Iterator[str]:
    """A new database and role for one test; dropped afterwards even with open connections."""
    postgres.start()  # a no-op unless an earlier test stopped or killed the server
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    url = postgres.ensure_database(name)
    try:
        yield url
    finally:
        if postgres.is_running:
            postgres.drop_database(name)


def purge_jetstream(url: str, timeout: float = 10.0) -> list[str]:
    """Delete every JetStream stream (their consumers go with them); return their names."""
    return run_sync(_purge_jetstream(url, timeout))


async def _purge_jetstream(url: str, connect_timeout: float) -> list[str]:
    client = await nats.connect(
        url, connect_timeout=connect_timeout, allow_reconnect=False, max_reconnect_attempts=0
    )
    deleted: list[str] = []
    try:
        jsm = client.jsm()
        # Listing is paginated; deleting shifts the pages, so list again until empty.
        while streams := await jsm.streams_info():
            for stream in streams:
                name = stream.config.name
                if name is not None:
                    await jsm.delete_stream(name)
                    deleted.append(name)
    finally:
        await client.close()
    return deleted


def run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from synchronous code.

    It runs in a private event loop on a worker thread, because the calling thread may
    already be driving pytest-asyncio's loop, where ``asyncio.run`` would refuse to run
    (or, called between tests, reset that thread's current loop).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devstack-sync") as pool:
        return pool.submit(asyncio.run, coroutine).result()
