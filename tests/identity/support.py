"""Helpers for the identity tests: settings, an in-process identity on real sockets,
TOTP codes at chosen time steps, and database probes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import nats
import pyotp
from nats.aio.client import Client as NATS

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc as pb_grpc
from pipworks_identity import __version__
from pipworks_identity.handlers import Deps
from pipworks_identity.main import DEFINITION, build, build_deps, local_jwks
from pipworks_identity.settings import IdentitySettings
from pipworks_platform.auth import AuthInterceptor
from pipworks_platform.consumer import EventConsumer
from pipworks_platform.db import create_engine, libpq_dsn
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import decode_event
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.runtime import Infrastructure
from pipworks_platform.server import GrpcServer
from pipworks_platform.streams import ensure_stream, service_stream

SIGNING_KEY_ID = "sig-test"
SIGNING_SEED = base64.b64encode(os.urandom(32)).decode()
ENCRYPTION_KEY_ID = "enc-test"
ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
PASSWORD = "violet-harbour-lantern-42"
ADMIN_EMAIL = "root@broker.example"
ADMIN_PASSWORD = "granite-orchid-compass-77"

# Cheap argon2 and an unlimited address throttle, unless a test asks otherwise.
TEST_SETTINGS: dict[str, Any] = {
    "encryption_keys": f"{ENCRYPTION_KEY_ID}:{ENCRYPTION_KEY}",
    "encryption_active_key": ENCRYPTION_KEY_ID,
    "identity_signing_keys": f"{SIGNING_KEY_ID}:{SIGNING_SEED}",
    "identity_active_signing_key": SIGNING_KEY_ID,
    "identity_argon2_time_cost": 1,
    "identity_argon2_memory_kib": 64,
    "identity_throttle_burst": 100_000,
    "identity_throttle_per_minute": 1_000_000,
    "metrics_port": 0,
}


def settings_for(database_url: str, **overrides: Any) -> IdentitySettings:
    return IdentitySettings(**{**TEST_SETTINGS, "database_url": database_url, **overrides})


def env_for(database_url: str, nats_url: str, port: int, **overrides: Any) -> dict[str, str]:
    """The same settings as environment variables, for identity as its own process."""
    values = {
        **TEST_SETTINGS,
        "database_url": database_url,
        "nats_url": nats_url,
        "grpc_address": f"127.0.0.1:{port}",
        **overrides,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env.update({f"PIPWORKS_{key.upper()}": str(value) for key, value in values.items()})
    return env


@dataclass
class Identity:
    """An identity service wired as the runtime wires it, on a real port."""

    port: int
    database_url: str
    deps: Deps
    nats: NATS
    channel: grpc.aio.Channel
    stub: pb_grpc.IdentityServiceStub

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(libpq_dsn(self.database_url))
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.sql(query, *args)
        return rows[0][0] if rows else None

    async def events(self, event_type: str) -> list[Any]:
        """Decoded outbox events of ``event_type`` ("LoginFailed"), in commit order."""
        full = f"pipworks.events.v1.{event_type}"
        rows = await self.sql(
            "SELECT payload FROM outbox_events WHERE event_type = $1 ORDER BY id", full
        )
        return [decode_event(full, row["payload"]) for row in rows]


@contextlib.asynccontextmanager
async def running_identity(
    database_url: str,
    nats_url: str,
    *,
    relay: bool = False,
    consumers: bool = False,
    **overrides: Any,
) -> AsyncIterator[Identity]:
    settings = settings_for(database_url, **overrides)
    await upgrade_to_head(database_url, DEFINITION.migrations, service="identity")
    engine = create_engine(database_url, application_name="identity-test", pool_size=10)
    client = await nats.connect(nats_url)
    infra = Infrastructure(
        name="identity",
        version=__version__,
        settings=settings,
        nats=client,
        engine=engine,
        jwks_source=local_jwks,
    )
    components = await build(infra)
    infra.api_service_names = [api.full_name for api in components.api]
    server = GrpcServer(
        service="identity",
        address="127.0.0.1:0",
        api_services=components.api,
        auth=AuthInterceptor(infra.token_verifier),
    )
    port = await server.start()
    await server.set_ready(True)
    relay_task = None
    outbox_relay = None
    if relay:
        await ensure_stream(client.jetstream(), service_stream("identity"))
        outbox_relay = OutboxRelay(service="identity", database_url=database_url, nats=client)
        relay_task = asyncio.create_task(outbox_relay.run())
    event_consumers = [
        EventConsumer(
            service="identity",
            nats=client,
            unit_of_work=infra.unit_of_work,
            subscription=subscription,
            fetch_timeout=0.3,
        )
        for subscription in (components.subscriptions if consumers else [])
    ]
    consumer_tasks = [asyncio.create_task(consumer.run()) for consumer in event_consumers]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Identity(
            port=port,
            database_url=database_url,
            deps=build_deps(infra),
            nats=client,
            channel=channel,
            stub=pb_grpc.IdentityServiceStub(channel),
        )
    finally:
        await channel.close()
        await server.stop(0)
        for consumer in event_consumers:
            consumer.stop()
        await asyncio.wait_for(asyncio.gather(*consumer_tasks, return_exceptions=True), timeout=15)
        if outbox_relay is not None and relay_task is not None:
            outbox_relay.stop()
            await relay_task
        await client.close()
        await engine.dispose()


def bearer(token: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), *extra.items())


async def register(
    stub: pb_grpc.IdentityServiceStub,
    email: str,
    password: str = PASSWORD,
    *,
    country_code: str = "CY",
    **fields: str,
) -> pb.RegisterResponse:
    return await stub.Register(
        pb.RegisterRequest(email=email, password=password, country_code=country_code, **fields)
    )


async def login_tokens(
    stub: pb_grpc.IdentityServiceStub, email: str, password: str = PASSWORD
) -> pb.TokenPair:
    reply = await stub.Login(pb.LoginRequest(email=email, password=password))
    assert reply.HasField("tokens"), "expected a one-step login"
    return reply.tokens


# -- TOTP ------------------------------------------------------------------------------------

STEP = 30


async def fresh_step(margin: float = 8.0) -> int:
    """The current RFC 6238 step, after waiting out its last ``margin`` seconds.

    Tests then use codes of steps t-1, t and t+1, all inside the server's ±1 window for
    the next ``margin`` seconds, without ever waiting for real time steps to pass.
    """
    now = time.time()
    if STEP - now % STEP < margin:
        await asyncio.sleep(STEP - now % STEP + 0.05)
        now = time.time()
    return int(now) // STEP


def code_at(secret: str, step: int, *, digits: int = 6) -> str:
    return pyotp.TOTP(secret, digits=digits).at(step * STEP)


def secret_of(uri: str) -> str:
    return pyotp.parse_uri(uri).secret


async def enable_totp(
    stub: pb_grpc.IdentityServiceStub, access_token: str, step: int
) -> tuple[str, list[str]]:
    """Enrol and confirm with the code of ``step - 1``; returns (secret, recovery codes)."""
    enrollment = await stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=bearer(access_token))
    secret = secret_of(enrollment.otpauth_uri)
    confirmed = await stub.ConfirmTotp(
        pb.ConfirmTotpRequest(code=code_at(secret, step - 1)), metadata=bearer(access_token)
    )
    return secret, list(confirmed.recovery_codes)


async def staff_token(
    stub: pb_grpc.IdentityServiceStub, email: str, password: str, step: int
) -> str:
    """Log a staff member in the real way, with TOTP: an aal2 access token.

    Uses the codes of steps ``step - 1`` (confirm) and ``step`` (login).
    """
    first = await login_tokens(stub, email, password)
    secret, _ = await enable_totp(stub, first.access_token, step)
    challenge = await stub.Login(pb.LoginRequest(email=email, password=password))
    verified = await stub.VerifyMfa(
        pb.VerifyMfaRequest(
            mfa_challenge_token=challenge.mfa_challenge_token, totp_code=code_at(secret, step)
        )
    )
    return verified.tokens.access_token
