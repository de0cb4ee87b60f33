"""A service running in-process on real sockets, PostgreSQL and NATS, part by part.

Integration tests need what ``ServiceProcess`` starts, but switched on piece by piece:
the gRPC server always; the outbox relay, the event consumers and the background loops
only when a test asks. :func:`in_process` assembles them from the service's own
``ServiceDefinition`` (or a test's ``build`` over substituted dependencies), the way the
runtime does, and stops them in the runtime's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import nats
from nats.aio.client import Client as NATS

from pipworks_platform.auth import AuthInterceptor, JwksFetch
from pipworks_platform.consumer import EventConsumer
from pipworks_platform.db import create_engine, libpq_dsn
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import decode_event
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition
from pipworks_platform.server import GrpcServer
from pipworks_platform.settings import ServiceSettings
from pipworks_platform.streams import ensure_stream, service_stream

Build = Callable[[Infrastructure], Components | Awaitable[Components]]


async def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


class DatabaseProbes:
    """Reads of a service's database for assertions; needs a ``database_url``."""

    database_url: str

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await sql(self.database_url, query, *args)

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.sql(query, *args)
        return rows[0][0] if rows else None

    async def outbox(self, event_type: str) -> list[Any]:
        """Decoded outbox events of ``event_type`` ("LoginFailed"), in commit order."""
        full = f"pipworks.events.v1.{event_type}"
        rows = await self.sql(
            "SELECT payload FROM outbox_events WHERE event_type = $1 ORDER BY id", full
        )
        return [decode_event(full, row["payload"]) for row in rows]


@dataclass
class InProcessService(DatabaseProbes):
    """The running pieces, and probes of the service's database."""

    name: str
    port: int
    database_url: str
    infra: Infrastructure
    components: Components
    nats: NATS
    channel: grpc.aio.Channel
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class RunningService(DatabaseProbes):
    """Base of a test suite's handle on an in-process service (its ``service`` field)."""

    service: InProcessService

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def database_url(self) -> str:  # type: ignore[override]
        return self.service.database_url

    @property
    def nats(self) -> NATS:
        return self.service.nats

    @property
    def channel(self) -> grpc.aio.Channel:
        return self.service.channel


@contextlib.asynccontextmanager
async def in_process(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    *,
    build: Build | None = None,
    jwks_source: Callable[[Infrastructure], JwksFetch] | None = None,
    relay: bool = False,
    consumers: bool = False,
    background: bool = False,
) -> AsyncIterator[InProcessService]:
    """Migrate, build and serve ``definition``; start the relay, consumers and loops on ask."""
    name = definition.name
    database_url = settings.require_database_url()
    assert definition.migrations is not None
    await upgrade_to_head(database_url, definition.migrations, service=name)
    engine = create_engine(database_url, application_name=f"{name}-test", pool_size=10)
    client = await nats.connect(servers=settings.nats_servers)
    infra = Infrastructure(
        name=name,
        version=definition.version,
        settings=settings,
        nats=client,
        engine=engine,
        jwks_source=jwks_source or definition.jwks_source,
    )
    built = (build or definition.build)(infra)
    components = await built if inspect.isawaitable(built) else built
    infra.api_service_names = [api.full_name for api in components.api]
    server = GrpcServer(
        service=name,
        address="127.0.0.1:0",
        api_services=components.api,
        auth=AuthInterceptor(infra.token_verifier),
    )
    port = await server.start()
    await server.set_ready(True)
    tasks: list[asyncio.Task[None]] = []
    stoppers: list[Callable[[], None]] = []
    if relay:
        await ensure_stream(client.jetstream(), service_stream(name))
        outbox_relay = OutboxRelay(service=name, database_url=database_url, nats=client)
        tasks.append(asyncio.create_task(outbox_relay.run()))
        stoppers.append(outbox_relay.stop)
    for subscription in components.subscriptions if consumers else []:
        consumer = EventConsumer(
            service=name,
            nats=client,
            unit_of_work=infra.unit_of_work,
            subscription=subscription,
            fetch_timeout=0.3,
        )
        tasks.append(asyncio.create_task(consumer.run()))
        stoppers.append(consumer.stop)
    if background:
        tasks += [asyncio.create_task(job()) for job in components.background]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield InProcessService(
            name, port, database_url, infra, components, client, channel, stoppers
        )
    finally:
        await channel.close()
        await server.stop(0)
        for stop in stoppers:
            stop()
        for hook in components.on_stop:
            await hook()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=15)
        await client.close()
        await engine.dispose()
