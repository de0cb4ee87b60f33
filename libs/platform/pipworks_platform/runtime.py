"""Service process lifecycle: the one place that starts and stops infrastructure.

A service's ``main.py`` describes itself with a :class:`ServiceDefinition` whose
``build`` function is its composition root (it wires handlers, repositories and
servicers from the :class:`Infrastructure` it is given). :func:`run_service` does the
rest, in order: settings → logging → tracing → metrics → migrations (applied, or with
``PIPWORKS_MIGRATE_ON_START=false`` awaited from the migration job) → database →
NATS → gRPC server → outbox relay and consumers → ready. On SIGTERM it unwinds:
health NOT_SERVING → drain delay → stop accepting calls and let in-flight ones finish
within the grace period → stop consumers and relay → drain NATS → dispose the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import grpc
import nats.errors
import sqlalchemy as sa
import structlog
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from pipworks.common.v1 import service_info_pb2
from pipworks_platform.auth import (
    AuthInterceptor,
    JwksCache,
    JwksFetch,
    JwksUnavailable,
    TokenVerifier,
    identity_jwks_fetch,
)
from pipworks_platform.auth.jwks import JwkSet
from pipworks_platform.backoff import Backoff
from pipworks_platform.consumer import EventConsumer, Subscription
from pipworks_platform.crypto import FieldCipher, Keyring
from pipworks_platform.db.engine import create_engine, session_factory
from pipworks_platform.db.errors import is_transient_db_error
from pipworks_platform.db.migrations import SchemaBehind, check_at_head, upgrade_to_head
from pipworks_platform.db.unit_of_work import UnitOfWorkFactory
from pipworks_platform.leader import LeaderLock
from pipworks_platform.logging import configure_logging
from pipworks_platform.messaging import connect_nats
from pipworks_platform.metrics import MetricsServer
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.server import ApiService, GrpcServer
from pipworks_platform.settings import ServiceSettings, SettingsError
from pipworks_platform.streams import ensure_stream, service_stream
from pipworks_platform.tracing import configure_tracing, shutdown_tracing

log = structlog.get_logger(__name__)

READINESS_INTERVAL_SECONDS = 2.0


@dataclass
class Components:
    """What a service's composition root hands back to the runtime."""

    api: Sequence[ApiService]
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    generic_handlers: Sequence[grpc.GenericRpcHandler] = ()
    interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    reflection_services: Sequence[str] = ()
    # Run after the server stopped taking calls, before NATS and the database close.
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    version: str
    build: Callable[[Infrastructure], Components | Awaitable[Components]]
    migrations: Path | None = None
    settings_type: type[ServiceSettings] = ServiceSettings
    publishes_events: bool = True
    uses_nats: bool = True
    # Identity verifies tokens with its own keys instead of fetching them from itself.
    jwks_source: Callable[[Infrastructure], JwksFetch] | None = None


@dataclass
class Infrastructure:
    """The shared resources a composition root may wire into its components."""

    name: str
    version: str
    settings: ServiceSettings
    nats: NATS | None
    engine: AsyncEngine | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}/{os.getpid()}")
    api_service_names: list[str] = field(default_factory=list)
    jwks_source: Callable[[Infrastructure], JwksFetch] | None = None

    @cached_property
    def unit_of_work(self) -> UnitOfWorkFactory:
        if self.engine is None:
            raise RuntimeError(f"{self.name} has no database (no migrations configured)")
        return UnitOfWorkFactory(session_factory(self.engine), service=self.name)

    @cached_property
    def keyring(self) -> Keyring:
        keys, active = self.settings.encryption_keys, self.settings.encryption_active_key
        if keys is None or not active:
            raise SettingsError(
                [
                    "PIPWORKS_ENCRYPTION_KEYS and PIPWORKS_ENCRYPTION_ACTIVE_KEY: "
                    f"required by {self.name} to encrypt personal data"
                ]
            )
        return Keyring.from_env_values(keys.get_secret_value(), active)

    @cached_property
    def cipher(self) -> FieldCipher:
        """Field encryption for personal data and secrets at rest."""
        return FieldCipher(self.keyring)

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Verifies access tokens against identity's published keys."""
        if self.jwks_source is not None:
            fetch = self.jwks_source(self)
        elif self.settings.identity_address:
            fetch = identity_jwks_fetch(self.settings.identity_address)
        else:
            fetch = _no_jwks
        return TokenVerifier(
            JwksCache(fetch),
            issuer=self.settings.auth_issuer,
            audience=self.settings.auth_audience,
        )

    def service_info(self) -> service_info_pb2.ServiceInfo:
        info = service_info_pb2.ServiceInfo(
            name=self.name,
            version=self.version,
            api_services=self.api_service_names,
            instance_id=self.instance_id,
        )
        info.started_at.FromDatetime(self.started_at)
        return info


def run_service(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m pipworks_<service> [serve|migrate|verify-audit]``."""
    parser = argparse.ArgumentParser(prog=f"pipworks-{definition.name}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate", "verify-audit"]
    )
    args = parser.parse_args(argv)
    if args.command == "verify-audit":
        from pipworks_platform.audit.cli import verify_audit

        raise SystemExit(verify_audit(definition.name))
    # Migrating needs the database URL only, so the migration job (a Helm hook that runs
    # before the release's ConfigMaps and Secrets exist) is not held to the service's
    # own settings.
    settings_type = ServiceSettings if args.command == "migrate" else definition.settings_type
    try:
        settings = settings_type.from_env()
        if definition.migrations is not None:
            settings.require_database_url()
    except SettingsError as exc:
        print(f"pipworks-{definition.name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(definition.name, settings.log_level)
    if args.command == "migrate":
        if definition.migrations is None:
            log.info("no migrations", service=definition.name)
            return
        asyncio.run(
            upgrade_to_head(
                settings.require_database_url(), definition.migrations, service=definition.name
            )
        )
        log.info("migrations applied", service=definition.name)
        return
    provider = configure_tracing(definition.name, definition.version)
    try:
        asyncio.run(ServiceProcess(definition, settings).serve())
    except SettingsError as exc:
        log.error("invalid configuration", problems=exc.problems)
        raise SystemExit(2) from None
    except SchemaBehind as exc:
        log.error("database not migrated", service=exc.service, pending=exc.pending)
        print(f"pipworks-{definition.name}: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    finally:
        shutdown_tracing(provider)


class ServiceProcess:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self._definition = definition
        self._settings = settings
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumers: list[EventConsumer] = []
        self._relay: OutboxRelay | None = None
        self._server: GrpcServer | None = None
        self._engine: AsyncEngine | None = None
        self._nats: NATS | None = None
        self._metrics = MetricsServer(settings.metrics_port)
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.port: int | None = None

    @property
    def name(self) -> str:
        return self._definition.name

    def request_stop(self) -> None:
        self._stopping.set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            if await self.start():
                await self._stopping.wait()
        finally:
            await self.stop()

    async def start(self) -> bool:
        """Bring everything up in order; False when a stop came first. Tests drive this."""
        settings, definition = self._settings, self._definition
        self._metrics.start()
        if definition.migrations is not None:
            url = settings.require_database_url()
            if settings.migrate_on_start:
                if not await self._retry_until_stopped("migrations", self._migrate, url):
                    return False
            elif not await self._wait_for_schema(url):
                return False
            self._engine = create_engine(
                url, application_name=f"pipworks-{self.name}", pool_size=settings.database_pool_size
            )
        if definition.uses_nats:
            self._nats = await connect_nats(
                settings.nats_servers, name=f"pipworks-{self.name}", stopping=self._stopping
            )
            if self._nats is None:
                return False
        infra = Infrastructure(
            name=self.name,
            version=definition.version,
            settings=settings,
            nats=self._nats,
            engine=self._engine,
            jwks_source=definition.jwks_source,
        )
        components = definition.build(infra)
        if inspect.isawaitable(components):
            components = await components
        infra.api_service_names = [api.full_name for api in components.api]
        self._on_stop = list(components.on_stop)
        self._server = GrpcServer(
            service=self.name,
            address=settings.grpc_address,
            api_services=components.api,
            max_message_bytes=settings.max_message_bytes,
            auth=AuthInterceptor(infra.token_verifier),
            extra_interceptors=components.interceptors,
            generic_handlers=components.generic_handlers,
            reflection_services=components.reflection_services,
        )
        self.port = await self._server.start()
        if definition.publishes_events and self._engine is not None and self._nats is not None:
            self._relay = OutboxRelay(
                service=self.name, database_url=settings.require_database_url(), nats=self._nats
            )
            self._spawn(self._run_relay(), "outbox-relay")
        for subscription in components.subscriptions:
            if self._nats is None:
                raise RuntimeError(f"{self.name} subscribes to events but uses_nats is False")
            consumer = EventConsumer(
                service=self.name,
                nats=self._nats,
                unit_of_work=infra.unit_of_work,
                subscription=subscription,
                leader=(
                    LeaderLock(
                        settings.require_database_url(),
                        f"{self.name}:consumer:{subscription.durable}",
                    )
                    if subscription.ordered
                    else None
                ),
            )
            self._consumers.append(consumer)
            self._spawn(consumer.run(), f"consumer-{subscription.durable}")
        for job in components.background:
            self._spawn(job(), getattr(job, "__name__", "background"))
        self._spawn(self._watch_readiness(), "readiness")
        log.info("serving", service=self.name, address=settings.grpc_address, port=self.port)
        return True

    async def _migrate(self, url: str) -> None:
        assert self._definition.migrations is not None
        await upgrade_to_head(url, self._definition.migrations, service=self.name)

    async def _wait_for_schema(self, url: str) -> bool:
        """Wait for the migration job to bring the database to head (never migrate here).

        Raises :class:`SchemaBehind` when ``migration_wait_seconds`` pass first, so the
        process exits naming the pending revisions instead of serving an old schema.
        """
        assert self._definition.migrations is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.migration_wait_seconds
        backoff = Backoff(maximum=5.0)
        while not self._stopping.is_set():
            try:
                await check_at_head(url, self._definition.migrations, service=self.name)
                return True
            except SchemaBehind as exc:
                if loop.time() >= deadline:
                    raise
                log.warning("waiting for migrations", service=self.name, pending=exc.pending)
            except Exception as exc:
                if not _is_retryable(exc):
                    raise
                log.warning("waiting for dependency", step="schema check", error=repr(exc))
            delay, remaining = backoff.next_delay(), deadline - loop.time()
            if remaining > 0:
                delay = min(delay, remaining)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        return False

    async def _run_relay(self) -> None:
        assert self._relay is not None
        assert self._nats is not None
        stream = service_stream(self.name, replicas=self._settings.stream_replicas)
        ensured = await self._retry_until_stopped(
            "stream", ensure_stream, self._nats.jetstream(), stream
        )
        if ensured:
            await self._relay.run()

    async def _watch_readiness(self) -> None:
        ready: bool | None = None
        while not self._stopping.is_set():
            now_ready = await self._dependencies_ok()
            if now_ready != ready and self._server is not None and not self._stopping.is_set():
                await self._server.set_ready(now_ready)
                log.info("readiness changed", service=self.name, ready=now_ready)
                ready = now_ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), READINESS_INTERVAL_SECONDS)

    async def _dependencies_ok(self) -> bool:
        if self._definition.uses_nats and (self._nats is None or not self._nats.is_connected):
            return False
        if self._engine is None:
            return True
        try:
            async with asyncio.timeout(2):
                async with self._engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            if not is_transient_db_error(exc):
                log.warning("database check failed", error=repr(exc))
            return False
        return True

    async def _retry_until_stopped(
        self, what: str, action: Callable[..., Awaitable[object]], *args: object
    ) -> bool:
        backoff = Backoff(maximum=5.0)
        while not self._stopping.is_set():
            try:
                await action(*args)
                return True
            except Exception as exc:
                if not _is_retryable(exc):
                    raise
                log.warning("waiting for dependency", step=what, error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next_delay())
        return False

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.ensure_future(_supervised(coro, name, self._stopping)))

    async def stop(self) -> None:
        """The ordered shutdown (also what SIGTERM triggers through :meth:`serve`)."""
        settings = self._settings
        self._stopping.set()
        if self._server is not None:
            await self._server.begin_shutdown()
            log.info(
                "shutting down", service=self.name, grace_seconds=settings.shutdown_grace_seconds
            )
            if settings.shutdown_drain_seconds:
                await asyncio.sleep(settings.shutdown_drain_seconds)
            await self._server.stop(settings.shutdown_grace_seconds)
        for hook in self._on_stop:
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed", service=self.name)
        for consumer in self._consumers:
            consumer.stop()
        if self._relay is not None:
            self._relay.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nats.drain(), timeout=5)
        if self._engine is not None:
            await self._engine.dispose()
        self._metrics.stop()
        log.info("stopped", service=self.name)


async def _supervised(coro: Awaitable[None], name: str, stopping: asyncio.Event) -> None:
    """Run a long-lived task; a crash is logged and stops the process (fail fast)."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task crashed; stopping", task=name)
        stopping.set()


async def _no_jwks() -> JwkSet:
    raise JwksUnavailable("PIPWORKS_IDENTITY_ADDRESS is not set; no keys to verify tokens")


def _is_retryable(exc: BaseException) -> bool:
    return is_transient_db_error(exc) or isinstance(exc, nats.errors.Error)
