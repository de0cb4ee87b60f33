"""Helpers for the bridge tests: settings, an in-process bridge on real sockets, the
simulator's control API, events on NATS, and database probes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import grpc
import nats
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as pb_grpc
from pipworks_devstack.mt5sim import DEFAULT_MANAGER_LOGIN, DEFAULT_MANAGER_PASSWORD
from pipworks_mtbridge import __version__
from pipworks_mtbridge.handlers import Deps
from pipworks_mtbridge.main import DEFINITION, assemble, build_deps
from pipworks_mtbridge.mt5 import Mt5Client
from pipworks_mtbridge.settings import MtBridgeSettings
from pipworks_platform.auth import AuthInterceptor
from pipworks_platform.consumer import EventConsumer
from pipworks_platform.db import create_engine, libpq_dsn
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import decode_event
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.runtime import Infrastructure
from pipworks_platform.server import GrpcServer
from pipworks_platform.streams import ensure_stream, service_stream
from tests.tokens import TokenAuthority

SERVER = "mt5-live"
GROUP = "real\\standard"
MANAGER_LOGIN = DEFAULT_MANAGER_LOGIN
MANAGER_PASSWORD = DEFAULT_MANAGER_PASSWORD

FAST: dict[str, Any] = {
    "metrics_port": 0,
    "mtbridge_sync_interval_seconds": 0.1,
    "mtbridge_margin_interval_seconds": 0.2,
    "mtbridge_kyc_server": SERVER,
    "mtbridge_kyc_group": GROUP,
}


def settings_for(
    database_url: str, nats_url: str, sim_url: str, **overrides: Any
) -> dict[str, Any]:
    return {
        **FAST,
        "database_url": database_url,
        "nats_url": nats_url,
        "mtbridge_passwords": {SERVER: MANAGER_PASSWORD},
        "mtbridge_servers": f"{SERVER}={sim_url}|{MANAGER_LOGIN}|real\\",
        **overrides,
    }


def env_for(database_url: str, nats_url: str, sim_url: str, **overrides: Any) -> dict[str, str]:
    """The same settings as environment variables, for the bridge as its own process."""
    values = settings_for(database_url, nats_url, sim_url, **overrides)
    passwords = values.pop("mtbridge_passwords")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env.update({f"PIPWORKS_{key.upper()}": str(value) for key, value in values.items()})
    env.update(
        {
            f"PIPWORKS_MTBRIDGE_PASSWORD_{n.upper().replace('-', '_')}": p
            for n, p in passwords.items()
        }
    )
    return env


@dataclass
class Bridge:
    """The bridge wired as the runtime wires it, on a real port."""

    port: int
    database_url: str
    deps: Deps
    nats: NATS
    stub: pb_grpc.MtBridgeServiceStub

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await sql(self.database_url, query, *args)

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.sql(query, *args)
        return rows[0][0] if rows else None

    async def outbox(self, event_type: str) -> list[Any]:
        """Decoded outbox events of ``event_type`` ("MtAccountOpened"), in commit order."""
        full = f"pipworks.events.v1.{event_type}"
        rows = await self.sql(
            "SELECT payload FROM outbox_events WHERE event_type = $1 ORDER BY id", full
        )
        return [decode_event(full, row["payload"]) for row in rows]


async def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def static_jwks(authority: TokenAuthority) -> Callable[[Infrastructure], Any]:
    def source(infra: Infrastructure):  # type: ignore[no-untyped-def]
        keys = authority.jwks()

        async def fetch():  # type: ignore[no-untyped-def]
            return keys

        return fetch

    return source


@contextlib.asynccontextmanager
async def running_bridge(
    database_url: str,
    nats_url: str,
    sim_url: str,
    authority: TokenAuthority,
    *,
    relay: bool = False,
    consumers: bool = False,
    loops: bool = False,
    wrap: Callable[[Deps], Deps] | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    settings = MtBridgeSettings(**settings_for(database_url, nats_url, sim_url, **overrides))
    assert DEFINITION.migrations is not None
    await upgrade_to_head(database_url, DEFINITION.migrations, service="mtbridge")
    engine = create_engine(database_url, application_name="mtbridge-test", pool_size=10)
    client = await nats.connect(nats_url)
    infra = Infrastructure(
        name="mtbridge",
        version=__version__,
        settings=settings,
        nats=client,
        engine=engine,
        jwks_source=static_jwks(authority),
    )
    deps = build_deps(infra)
    if wrap is not None:
        deps = wrap(deps)
    components = assemble(deps, infra)
    infra.api_service_names = [api.full_name for api in components.api]
    server = GrpcServer(
        service="mtbridge",
        address="127.0.0.1:0",
        api_services=components.api,
        auth=AuthInterceptor(infra.token_verifier),
    )
    port = await server.start()
    await server.set_ready(True)
    tasks: list[asyncio.Task[None]] = []
    stoppers: list[Callable[[], None]] = []
    if relay:
        await ensure_stream(client.jetstream(), service_stream("mtbridge"))
        outbox_relay = OutboxRelay(service="mtbridge", database_url=database_url, nats=client)
        tasks.append(asyncio.create_task(outbox_relay.run()))
        stoppers.append(outbox_relay.stop)
    if consumers:
        for subscription in components.subscriptions:
            consumer = EventConsumer(
                service="mtbridge",
                nats=client,
                unit_of_work=infra.unit_of_work,
                subscription=subscription,
                fetch_timeout=0.3,
            )
            tasks.append(asyncio.create_task(consumer.run()))
            stoppers.append(consumer.stop)
    if loops:
        tasks += [asyncio.create_task(job()) for job in components.background]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Bridge(port, database_url, deps, client, pb_grpc.MtBridgeServiceStub(channel))
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


# -- the simulator --------------------------------------------------------------------


class SimControl:
    """The simulator's /sim control API and a manager connection to check its state."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}{path}", json=body or {}) as reply,
        ):
            payload = await reply.json(content_type=None)
        assert str(payload.get("retcode", "")).startswith("0"), payload
        return payload

    async def get(self, path: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}{path}") as reply:
            return await reply.json(content_type=None)

    @contextlib.asynccontextmanager
    async def manager(self) -> AsyncIterator[Mt5Client]:
        async with Mt5Client(self.url, MANAGER_LOGIN, MANAGER_PASSWORD) as client:
            yield client


# -- events on NATS --------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    headers: dict[str, str]
    event: Any

    @property
    def event_id(self) -> str:
        return self.headers["Pipworks-Event-Id"]

    @property
    def trace_id(self) -> str:
        return self.headers["traceparent"].split("-")[1]


async def stream_events(js: Any, subject: str, *, batch: int = 1000) -> list[Published]:
    """Every message on ``subject`` in the mtbridge stream, decoded, in stream order."""
    stream = service_stream("mtbridge").name
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    psub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30
        ),
    )
    found: list[Published] = []
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=1)
            except TimeoutError:
                break
            for msg in msgs:
                headers = dict(msg.headers or {})
                event = decode_event(headers["Pipworks-Event-Type"], msg.data)
                found.append(Published(headers, event))
    finally:
        await psub.unsubscribe()
    return found
