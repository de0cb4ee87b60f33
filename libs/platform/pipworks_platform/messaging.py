"""NATS connection with reconnects that never give up.

A service keeps one connection for its whole life. Publishes from the outbox relay and
fetches from consumers pause while NATS is away and resume when it is back.
"""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NATS

from pipworks_platform.backoff import Backoff

log = structlog.get_logger(__name__)


async def connect_nats(servers: list[str], *, name: str, stopping: asyncio.Event) -> NATS | None:
    """Connect, retrying with backoff until connected or ``stopping`` is set (→ None)."""
    backoff = Backoff(maximum=5.0)
    while not stopping.is_set():
        try:
            return await nats.connect(
                servers=servers,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                ping_interval=10,
                max_outstanding_pings=3,
                error_cb=_on_error,
                disconnected_cb=_on_disconnected,
                reconnected_cb=_on_reconnected,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            log.warning("waiting for NATS", servers=servers, error=repr(exc))
            try:
                await asyncio.wait_for(stopping.wait(), timeout=backoff.next_delay())
            except TimeoutError:
                continue
    return None


async def _on_error(exc: Exception) -> None:
    log.warning("nats client error", error=repr(exc))


async def _on_disconnected() -> None:
    log.warning("nats disconnected")


async def _on_reconnected() -> None:
    log.info("nats reconnected")
