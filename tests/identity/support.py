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

import pyotp

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc as pb_grpc
from pipworks_identity.handlers import Deps
from pipworks_identity.main import DEFINITION, build_deps
from pipworks_identity.settings import IdentitySettings
from tests.harness import InProcessService, RunningService, in_process

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
class Identity(RunningService):
    """An identity service wired as the runtime wires it, on a real port."""

    service: InProcessService
    deps: Deps
    stub: pb_grpc.IdentityServiceStub

    async def events(self, event_type: str) -> list[Any]:
        """Decoded outbox events of ``event_type`` ("LoginFailed"), in commit order."""
        return await self.service.outbox(event_type)


@contextlib.asynccontextmanager
async def running_identity(
    database_url: str,
    nats_url: str,
    *,
    relay: bool = False,
    consumers: bool = False,
    **overrides: Any,
) -> AsyncIterator[Identity]:
    settings = settings_for(database_url, nats_url=nats_url, **overrides)
    async with in_process(DEFINITION, settings, relay=relay, consumers=consumers) as service:
        yield Identity(
            service, build_deps(service.infra), pb_grpc.IdentityServiceStub(service.channel)
        )


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
