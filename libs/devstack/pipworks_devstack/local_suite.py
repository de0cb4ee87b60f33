"""``LocalSuite``: the whole suite of ``make run`` as separate processes, for tests and demos.

It reads the same suite file (``deploy/local/suite.toml``) and gives every service the
same environment the runner would, with three differences that let several suites share
a machine: every port is free-picked, PostgreSQL, NATS and the secrets live under one
scratch directory, and each process writes its log to a file there. Unlike the runner,
it lets the caller take the suite apart while it runs::

    with LocalSuite(workdir=tmp_path) as suite:
        suite.kill("ib")             # SIGKILL, as a crash would
        suite.start("ib")            # same port, same environment; waits for SERVING
        suite.postgres.kill(); suite.postgres.start()
        suite.sim_control("POST", "/sim/activity", {...})

It is synchronous so that sync and async tests can use it alike.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from pipworks_devstack._process import accepts_connections, free_port, kill_tree, stop_process
from pipworks_devstack.config import ServiceConfig, SuiteConfig, load_config
from pipworks_devstack.devsecrets import DevSecrets, load_or_create
from pipworks_devstack.environment import placeholders, service_env
from pipworks_devstack.health import wait_serving
from pipworks_devstack.mt5sim import sim_control
from pipworks_devstack.nats import NatsServer
from pipworks_devstack.postgres import EmbeddedPostgres
from pipworks_devstack.testing import run_sync

__all__ = ["DEFAULT_SUITE_FILE", "LocalSuite", "SuiteProcessError"]

DEFAULT_SUITE_FILE = Path("deploy/local/suite.toml")
ADMIN_EMAIL_VARIABLE = "PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL"


class SuiteProcessError(RuntimeError):
    """A service would not start or become ready; the message ends with its log tail."""


class LocalSuite:
    """Start, kill and restart the processes of the local suite.

    ``env`` adds or overrides variables per service name (``"*"`` for every service), on
    top of what the suite file gives; ``only`` limits the suite to some services (the
    gateway's routes then name only those).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        config_file: Path | None = None,
        repo_root: Path | None = None,
        env: Mapping[str, Mapping[str, str]] | None = None,
        only: Iterable[str] | None = None,
        startup_timeout: float = 90.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.repo_root = (repo_root or Path.cwd()).absolute()
        self.workdir = workdir.absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        loaded = load_config(
            self.repo_root / (config_file or DEFAULT_SUITE_FILE), base_dir=self.repo_root
        )
        self.config = _relocate(loaded, self.workdir, only)
        self._extra_env = {name: dict(values) for name, values in (env or {}).items()}
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self.postgres = EmbeddedPostgres(
            self.config.postgres.data_dir, log_path=self.workdir / "postgres.log"
        )
        self.nats = NatsServer(self.config.nats.store_dir, log_path=self.workdir / "nats.log")
        self.secrets: DevSecrets | None = None
        self._environments: dict[str, dict[str, str]] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._args: dict[str, list[str]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start_all()
        except BaseException:
            self.stop_all()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start_all(self) -> None:
        """PostgreSQL, NATS, then every service in suite order, each waited for."""
        services = self.config.services
        self.secrets = load_or_create(
            self.config.runner.secrets_file, [s.name for s in services if s.database]
        )
        self.postgres.start()
        self.nats.start()
        values = placeholders(services, self.secrets)
        for service in services:
            database_url = (
                self.postgres.ensure_database(
                    service.name, password=self.secrets.database_passwords[service.name]
                )
                if service.database
                else None
            )
            extra = {**self._extra_env.get("*", {}), **self._extra_env.get(service.name, {})}
            self._environments[service.name] = {
                **service_env(
                    service,
                    base=os.environ,
                    nats_url=self.nats.url,
                    database_url=database_url,
                    secrets=self.secrets,
                    shared_env=self.config.runner.shared_env,
                    values=values,
                ),
                **extra,
            }
        for service in services:
            self._spawn(service, values)
        for service in services:
            self.wait_ready(service.name)

    def stop_all(self) -> None:
        """Services in reverse order (SIGTERM, then SIGKILL), then NATS, then PostgreSQL."""
        for name in reversed(list(self._processes)):
            self.stop(name)
        self.nats.stop()
        self.postgres.stop()
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def start(self, name: str) -> None:
        """(Re)start one service with the environment it first had, and wait until ready."""
        if self.is_running(name):
            return
        self._spawn(self.service(name), None)
        self.wait_ready(name)

    def stop(self, name: str) -> int | None:
        """SIGTERM (the ordered shutdown) and wait; SIGKILL after the stop timeout."""
        proc = self._processes.get(name)
        return None if proc is None else stop_process(proc, signal.SIGTERM, self._stop_timeout)

    def kill(self, name: str) -> None:
        """SIGKILL the service (and anything it started), as a crash would."""
        proc = self._processes.get(name)
        if proc is not None:
            kill_tree(proc)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def is_running(self, name: str) -> bool:
        proc = self._processes.get(name)
        return proc is not None and proc.poll() is None

    def pid(self, name: str) -> int:
        return self._processes[name].pid

    def wait_ready(self, name: str) -> None:
        """SERVING on ``grpc.health.v1`` (or, for the simulator, accepting connections)."""
        service = self.service(name)
        proc = self._processes[name]
        if service.is_grpc:
            failure = run_sync(
                wait_serving(
                    self.address(name),
                    self._startup_timeout,
                    alive=lambda: proc.poll() is None,
                )
            )
        else:
            failure = self._wait_listening(service, proc)
        if failure is not None:
            raise SuiteProcessError(f"{name}: {failure}\n{self.log(name)}")

    # -- addresses and secrets -------------------------------------------------------

    def service(self, name: str) -> ServiceConfig:
        for service in self.config.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in the suite")

    @property
    def names(self) -> list[str]:
        return [service.name for service in self.config.services]

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.service(name).grpc_port}"

    @property
    def gateway(self) -> str:
        """The public address: the service the suite file marks ``public``."""
        return self.address(next(s.name for s in self.config.services if s.public))

    def environment(self, name: str) -> dict[str, str]:
        return dict(self._environments[name])

    @property
    def admin_email(self) -> str:
        return self._environments["identity"][ADMIN_EMAIL_VARIABLE]

    @property
    def admin_password(self) -> str:
        assert self.secrets is not None, "the suite has not started"
        return self.secrets.admin_password

    def database_url(self, name: str) -> str:
        """The service's own database URL (its role and password), for read-only checks."""
        return self._environments[name]["PIPWORKS_DATABASE_URL"]

    @property
    def sim_url(self) -> str:
        return f"http://{self.address('mt5sim')}"

    def sim_control(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call the simulator's ``/sim/...`` control API; return the decoded JSON reply."""
        return sim_control(self.sim_url, method, path, body)

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def log(self, name: str, chars: int = 4000) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # -- internals -------------------------------------------------------------------

    def _spawn(self, service: ServiceConfig, values: Mapping[str, object] | None) -> None:
        if values is None:  # a restart: the arguments it first had
            args = self._args[service.name]
        else:
            args = [arg.format_map(values) for arg in service.args]
            self._args[service.name] = args
        path = self.log_path(service.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if service.name not in self._logs:
            self._logs[service.name] = open(path, "ab")  # noqa: SIM115 - kept for restarts
        self._processes[service.name] = subprocess.Popen(
            [sys.executable, "-m", service.module, *args],
            env=self._environments[service.name],
            cwd=self.repo_root,
            stdin=subprocess.DEVNULL,
            stdout=self._logs[service.name],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_listening(self, service: ServiceConfig, proc: subprocess.Popen[bytes]) -> str | None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with {proc.returncode} before it listened"
            if accepts_connections(service.grpc_port):
                return None
            time.sleep(0.1)
        return f"did not listen on port {service.grpc_port}"


def _relocate(config: SuiteConfig, workdir: Path, only: Iterable[str] | None) -> SuiteConfig:
    """The suite on free ports with its state under ``workdir``."""
    wanted = set(only) if only is not None else None
    services = tuple(
        dataclasses.replace(
            service,
            grpc_port=free_port(),
            metrics_port=0,
            args=_replace_state_paths(service.args, workdir),
            env={k: _relative_data(v, workdir) for k, v in service.env.items()},
        )
        for service in config.services
        if wanted is None or service.name in wanted
    )
    # A service's --port argument must follow its new port.
    services = tuple(_with_port_argument(service) for service in services)
    return dataclasses.replace(
        config,
        postgres=dataclasses.replace(config.postgres, port=0, data_dir=workdir / "postgres"),
        nats=dataclasses.replace(config.nats, port=0, monitor_port=0, store_dir=workdir / "nats"),
        runner=dataclasses.replace(config.runner, secrets_file=workdir / "dev-secrets.json"),
        services=services,
    )


def _replace_state_paths(args: tuple[str, ...], workdir: Path) -> tuple[str, ...]:
    return tuple(_relative_data(arg, workdir) for arg in args)


def _relative_data(value: str, workdir: Path) -> str:
    """``.data/...`` (the runner's state directory) moves under ``workdir``."""
    return str(workdir / value.removeprefix(".data/")) if value.startswith(".data/") else value


def _with_port_argument(service: ServiceConfig) -> ServiceConfig:
    args = list(service.args)
    if "--port" in args:
        args[args.index("--port") + 1] = str(service.grpc_port)
    return dataclasses.replace(service, args=tuple(args))
