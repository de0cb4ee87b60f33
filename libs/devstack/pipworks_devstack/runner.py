"""``make run``: PostgreSQL, NATS and every configured service, up in order, down in reverse.

The runner owns the lifecycle only. What runs comes from the suite file, how a service
process is watched lives in :mod:`supervisor`, and what it prints in :mod:`banner`.
Exit status: 0 after a requested stop (Ctrl-C or SIGTERM), 1 when something failed
(a service died or never became SERVING, PostgreSQL or NATS would not start or died).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pipworks_devstack._process import port_is_free
from pipworks_devstack.banner import BannerService, render_banner
from pipworks_devstack.config import ServiceConfig, SuiteConfig
from pipworks_devstack.devsecrets import DevSecrets, SecretsError, load_or_create
from pipworks_devstack.environment import placeholders, service_env
from pipworks_devstack.nats import NatsError, NatsServer
from pipworks_devstack.postgres import POSTGRES_BIN_PATH, EmbeddedPostgres, PostgresError
from pipworks_devstack.supervisor import ServiceFailed, ServiceProcess, describe_exit

_log = logging.getLogger("pipworks_devstack")

_INFRA_POLL_INTERVAL = 0.5


class StartupError(Exception):
    """The suite cannot start; the message says what to fix."""


def installed(services: Sequence[ServiceConfig]) -> tuple[list[ServiceConfig], list[str]]:
    """Split services into those whose module can be imported and the names of the rest.

    The suite file may list services that have not landed yet; they are skipped.
    """
    runnable: list[ServiceConfig] = []
    skipped: list[str] = []
    for service in services:
        try:
            found = importlib.util.find_spec(service.module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            runnable.append(service)
        else:
            _log.info("skipping %s: module %s is not installed", service.name, service.module)
            skipped.append(service.name)
    return runnable, skipped


def busy_ports(services: Sequence[ServiceConfig]) -> list[str]:
    """Service ports something else already holds (often a previous run still alive)."""
    problems = []
    for service in services:
        for what, port in (("gRPC", service.grpc_port), ("metrics", service.metrics_port)):
            if not port_is_free(port):
                problems.append(f"{service.name}: {what} port {port} is already in use")
    return problems


class SuiteRunner:
    def __init__(self, config: SuiteConfig, *, out: TextIO | None = None) -> None:
        self._config = config
        self._out = out or sys.stdout
        self._postgres = EmbeddedPostgres(config.postgres.data_dir, config.postgres.port)
        self._nats = NatsServer(config.nats.store_dir, config.nats.port, config.nats.monitor_port)
        self._services: list[ServiceProcess] = []
        self._stop_requested = asyncio.Event()

    async def run(self) -> int:
        """Run until stopped; return the process exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested.is_set():
            _log.info("%s again: already stopping", sig.name)
            return
        _log.info("%s received: stopping the suite", sig.name)
        self._stop_requested.set()

    async def _run(self) -> int:
        try:
            runnable, skipped = installed(self._config.services)
            if problems := busy_ports(runnable):
                listing = "\n".join(f"  - {p}" for p in problems)
                raise StartupError(
                    f"cannot start:\n{listing}\n"
                    "Is an earlier run still alive? `ss -ltnp` shows who holds a port."
                )
            secrets = load_or_create(
                self._config.runner.secrets_file, [s.name for s in runnable if s.database]
            )
            await self._start_infrastructure()
            if self._stop_requested.is_set():
                return 0
            database_urls = await asyncio.to_thread(self._ensure_databases, runnable, secrets)
            values = placeholders(runnable, secrets)
            for service in runnable:
                await self._spawn(service, database_urls.get(service.name), secrets, values)
            if not await self._until_serving():
                return 0
            self._print_banner(runnable, skipped)
            return await self._supervise()
        except (StartupError, SecretsError, PostgresError, NatsError, ServiceFailed) as exc:
            _log.error("%s", exc)
            return 1
        finally:
            await self._teardown()

    async def _start_infrastructure(self) -> None:
        pg, nats = self._config.postgres, self._config.nats
        _log.info("starting PostgreSQL (data in %s)", pg.data_dir)
        await asyncio.to_thread(self._postgres.start)
        _log.info("starting NATS with JetStream (store in %s)", nats.store_dir)
        await asyncio.to_thread(self._nats.start)

    def _ensure_databases(
        self, services: Sequence[ServiceConfig], secrets: DevSecrets
    ) -> dict[str, str]:
        """One database and one role per service, named after it (blocking: run in a thread)."""
        return {
            service.name: self._postgres.ensure_database(
                service.name, password=secrets.database_passwords[service.name]
            )
            for service in services
            if service.database
        }

    async def _spawn(
        self,
        service: ServiceConfig,
        database_url: str | None,
        secrets: DevSecrets,
        values: Mapping[str, object],
    ) -> None:
        env = service_env(
            service,
            base=os.environ,
            nats_url=self._nats.url,
            database_url=database_url,
            secrets=secrets,
            shared_env=self._config.runner.shared_env,
            values=values,
        )
        process = ServiceProcess(
            service.name,
            service.module,
            env,
            f"127.0.0.1:{service.grpc_port}",
            args=[arg.format_map(values) for arg in service.args],
            readiness=service.readiness,
        )
        _log.info("starting %s (python -m %s)", service.name, service.module)
        await process.start()
        self._services.append(process)

    async def _until_serving(self) -> bool:
        """Wait for every service to be SERVING; ``False`` if a stop was requested first."""
        timeout = self._config.runner.startup_timeout
        waiters = {asyncio.create_task(s.wait_serving(timeout)) for s in self._services}
        stop = asyncio.create_task(self._stop_requested.wait())
        pending: set[asyncio.Task[object]] = {*waiters, stop}
        try:
            while pending - {stop}:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    return False
                for task in done:
                    if (error := task.exception()) is not None:
                        raise error
            return True
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _supervise(self) -> int:
        """Wait for a stop request; report a service or server that dies meanwhile."""
        exits = {asyncio.create_task(s.wait()): s for s in self._services}
        infrastructure = asyncio.create_task(self._watch_infrastructure())
        stop = asyncio.create_task(self._stop_requested.wait())
        watched: set[asyncio.Task[object]] = {*exits, infrastructure, stop}
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in watched:
                task.cancel()
            await asyncio.gather(*watched, return_exceptions=True)
        if stop in done:
            return 0
        if infrastructure in done:
            _log.error("%s", infrastructure.result())
            return 1
        for task in done:
            service = exits[task]
            failure = ServiceFailed(
                service.name, f"{describe_exit(task.result())} while running", service.last_lines()
            )
            _log.error("%s", failure)
        return 1

    async def _watch_infrastructure(self) -> str:
        while True:
            await asyncio.sleep(_INFRA_POLL_INTERVAL)
            if not self._postgres.is_running:
                return f"PostgreSQL stopped unexpectedly; see {self._postgres.log_path}"
            if not self._nats.is_running:
                return f"nats-server stopped unexpectedly; see {self._nats.log_path}"

    async def _teardown(self) -> None:
        """Services in reverse start order, then NATS, then PostgreSQL."""
        for process in reversed(self._services):
            was_running = process.returncode is None
            if was_running:
                _log.info("stopping %s", process.name)
            returncode = await process.stop(self._config.runner.stop_timeout)
            if was_running and returncode not in (0, -signal.SIGTERM):
                _log.warning("%s %s on shutdown", process.name, describe_exit(returncode))
        self._services.clear()
        with contextlib.suppress(NatsError):
            await asyncio.to_thread(self._nats.stop)
        with contextlib.suppress(PostgresError):
            await asyncio.to_thread(self._postgres.stop)
        _log.info("stopped")

    def _print_banner(self, services: Sequence[ServiceConfig], skipped: Sequence[str]) -> None:
        banner = render_banner(
            postgres_address=f"{self._postgres.host}:{self._postgres.port}",
            postgres_admin_dsn=self._postgres.admin_dsn,
            psql=_shorten(POSTGRES_BIN_PATH / "psql"),
            nats_url=self._nats.url,
            nats_monitor_url=self._nats.monitor_url,
            services=[
                BannerService(
                    name=s.name,
                    grpc_address=f"127.0.0.1:{s.grpc_port}",
                    metrics_port=s.metrics_port,
                    database=s.name if s.database else None,
                    public=s.public,
                )
                for s in services
            ],
            skipped=skipped,
        )
        self._out.write(banner + "\n")
        self._out.flush()


def _shorten(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter to copy)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
