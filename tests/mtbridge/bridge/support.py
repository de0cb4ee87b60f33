"""Helpers for the bridge tests: settings, an in-process bridge on real sockets, the
simulator's control API, events on NATS, and database probes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as pb_grpc
from pipworks_devstack.mt5sim import (
    DEFAULT_MANAGER_LOGIN,
    DEFAULT_MANAGER_PASSWORD,
    Mt5SimProcess,
)
from pipworks_mtbridge.handlers import Deps
from pipworks_mtbridge.main import DEFINITION, assemble, build_deps
from pipworks_mtbridge.mt5 import Mt5Client
from pipworks_mtbridge.settings import MtBridgeSettings
from pipworks_platform.events import decode_event
from pipworks_platform.runtime import Components, Infrastructure
from pipworks_platform.streams import service_stream
from tests.harness import InProcessService, RunningService, in_process
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
class Bridge(RunningService):
    """The bridge wired as the runtime wires it, on a real port."""

    service: InProcessService
    deps: Deps
    stub: pb_grpc.MtBridgeServiceStub

    async def outbox(self, event_type: str) -> list[Any]:
        """Decoded outbox events of ``event_type`` ("MtAccountOpened"), in commit order."""
        return await self.service.outbox(event_type)


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
    built: list[Deps] = []

    def build(infra: Infrastructure) -> Components:
        deps = build_deps(infra)
        built.append(wrap(deps) if wrap is not None else deps)
        return assemble(built[0], infra)

    async with in_process(
        DEFINITION,
        settings,
        build=build,
        jwks_source=authority.jwks_source(),
        relay=relay,
        consumers=consumers,
        background=loops,
    ) as service:
        yield Bridge(service, built[0], pb_grpc.MtBridgeServiceStub(service.channel))


# -- the simulator --------------------------------------------------------------------


class SimControl:
    """The simulator's /sim control API (``Mt5SimProcess.control``, off the event loop)
    and a manager connection to check its state."""

    def __init__(self, process: Mt5SimProcess) -> None:
        self._process = process
        self.url = process.url

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = await asyncio.to_thread(self._process.control, "POST", path, body or {})
        assert str(payload.get("retcode", "")).startswith("0"), payload
        return payload

    async def get(self, path: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._process.control, "GET", path)

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
