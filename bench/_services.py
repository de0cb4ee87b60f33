"""Real Pipworks service processes for the benches: spawn, wait for SERVING, stop.

Each service runs as ``python -m pipworks_<name>`` in its own session (a terminal
Ctrl-C reaches the bench only; the bench decides the shutdown order) with its output in
a log file under the run's scratch directory, so the bench process spends no CPU relaying
it. :func:`running_service` always stops the process (SIGTERM, then SIGKILL) on the way
out, Ctrl-C included; the stop is synchronous, so a second Ctrl-C cannot leave it running.

:class:`Keys` holds the secrets one run shares between its processes: the field
encryption keyring and identity's token signing key, kept as a ``TokenAuthority`` so a
bench can mint access tokens that identity's JWKS vouches for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import psutil

from bench._harness import BenchContext, BenchError
from pipworks_devstack._process import LOOPBACK, log_tail, stop_process
from pipworks_devstack.health import wait_serving
from pipworks_devstack.testing import free_port
from pipworks_platform.crypto import format_key_entry, generate_key
from tests.tokens import TokenAuthority

START_SECONDS = 90.0  # migrations included, on a loaded machine
STOP_SECONDS = 15.0  # after SIGTERM, before SIGKILL
HEALTH_POLL_SECONDS = 0.1
GRACE_SECONDS = "2"  # PIPWORKS_SHUTDOWN_GRACE_SECONDS: in-flight calls are the bench's own
ENCRYPTION_KEY_ID = "bench"
SIGNING_KEY_ID = "bench-signing"


@dataclass(frozen=True)
class Argon2Cost:
    """identity's argon2id parameters (``PIPWORKS_IDENTITY_ARGON2_*``)."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def env(self) -> dict[str, str]:
        return {
            "PIPWORKS_IDENTITY_ARGON2_TIME_COST": str(self.time_cost),
            "PIPWORKS_IDENTITY_ARGON2_MEMORY_KIB": str(self.memory_kib),
            "PIPWORKS_IDENTITY_ARGON2_PARALLELISM": str(self.parallelism),
        }

    def describe(self) -> str:
        memory = (
            f"{self.memory_kib // 1024} MiB"
            if self.memory_kib % 1024 == 0
            else f"{self.memory_kib} KiB"
        )
        return f"argon2id t={self.time_cost}, m={memory}, p={self.parallelism}"

    def short(self) -> str:
        """``t3/64MiB/p1``, for table labels."""
        memory = (
            f"{self.memory_kib // 1024}MiB"
            if self.memory_kib % 1024 == 0
            else f"{self.memory_kib}KiB"
        )
        return f"t{self.time_cost}/{memory}/p{self.parallelism}"


@dataclass(frozen=True)
class Keys:
    """The secrets every process of one bench run shares."""

    authority: TokenAuthority = field(default_factory=lambda: TokenAuthority(kid=SIGNING_KEY_ID))
    encryption_key: str = field(
        default_factory=lambda: format_key_entry(ENCRYPTION_KEY_ID, generate_key())
    )

    def env(self) -> dict[str, str]:
        return {
            "PIPWORKS_ENCRYPTION_KEYS": self.encryption_key,
            "PIPWORKS_ENCRYPTION_ACTIVE_KEY": ENCRYPTION_KEY_ID,
            "PIPWORKS_IDENTITY_SIGNING_KEYS": self.authority.signing_key_env(),
            "PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY": self.authority.kid,
        }


@dataclass
class ServiceSpec:
    """What to run: ``python -m <module>`` with ``env``, on a port chosen up front.

    The port is known before anything starts, so processes that call each other (the
    gateway, a backend fetching identity's JWKS) can all start at once. With
    ``database`` set, :func:`running_services` gives the service a fresh database
    (``PIPWORKS_DATABASE_URL``) and the run's nats-server.
    """

    name: str
    module: str
    env: dict[str, str]
    database: bool = True
    port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


class ServiceProcess:
    """One running service, its output in a log file."""

    def __init__(self, spec: ServiceSpec, env: Mapping[str, str], log_path: Path) -> None:
        self.name = spec.name
        self.module = spec.module
        self.port = spec.port
        self.log_path = log_path
        self._env = {**_inherited_env(), **env, "PIPWORKS_GRPC_ADDRESS": self.address}
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """SIGTERM (the service's ordered shutdown); SIGKILL if it outstays STOP_SECONDS."""
        try:
            if self._proc is not None:
                stop_process(self._proc, signal.SIGTERM, STOP_SECONDS)
        finally:
            if self._log is not None:
                self._log.close()

    def cpu_by_pid(self) -> dict[int, float]:
        """User + system CPU the process (all its threads) has used so far."""
        if self._proc is None:
            return {}
        return Processes(self.name, self._proc.pid).cpu_by_pid()

    def check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise BenchError(f"{self.name} exited (code {code}); its log:\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(f"  | {line}" for line in log_tail(self.log_path, lines).splitlines())

    async def wait_serving(self, within: float = START_SECONDS) -> None:
        """Until SERVING; BenchError (with the service's log) on exit or timeout."""
        failure = await wait_serving(
            self.address, within, alive=lambda: self._proc is not None and self._proc.poll() is None
        )
        if failure == "exited":
            self.check_alive()
        if failure is not None:
            raise BenchError(f"{self.name} {failure}; its log:\n{self.tail()}")


def _inherited_env() -> dict[str, str]:
    """The bench's environment without stray ``PIPWORKS_*`` settings: the bench sets those."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PIPWORKS_")}


@asynccontextmanager
async def running_services(
    ctx: BenchContext, *specs: ServiceSpec
) -> AsyncIterator[dict[str, ServiceProcess]]:
    """Start every service at once; yield them by name once all are SERVING.

    On the way out, Ctrl-C included, each is stopped (in reverse order, synchronously),
    then its database dropped.
    """
    async with contextlib.AsyncExitStack() as stack:
        started: dict[str, ServiceProcess] = {}
        for spec in specs:
            env = {
                "PIPWORKS_METRICS_PORT": "0",
                "PIPWORKS_SHUTDOWN_GRACE_SECONDS": GRACE_SECONDS,
                **spec.env,
            }
            if spec.database:
                prefix = f"bench_{spec.name.replace('-', '_')}"
                env["PIPWORKS_DATABASE_URL"] = await stack.enter_async_context(ctx.database(prefix))
                env["PIPWORKS_NATS_URL"] = ctx.nats_server.url
            log_path = ctx.workdir / "logs" / f"{spec.name}-{time.monotonic_ns()}.log"
            service = ServiceProcess(spec, env, log_path)
            stack.callback(service.stop)
            service.start()
            started[spec.name] = service
        waits = [asyncio.create_task(s.wait_serving()) for s in started.values()]
        try:
            await asyncio.gather(*waits)
        finally:  # one failed: stop polling the others
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        yield started


def identity_spec(
    keys: Keys, *, argon2: Argon2Cost | None = None, name: str = "identity"
) -> ServiceSpec:
    """identity with its per-address throttle out of the way.

    ``argon2=None`` sets no ``PIPWORKS_IDENTITY_ARGON2_*``: identity's defaults apply.
    """
    env = {
        **keys.env(),
        # A bench logs in far more often than a person: the throttle's maxima
        # (identity.settings), so it never answers TOO_MANY_ATTEMPTS.
        "PIPWORKS_IDENTITY_THROTTLE_BURST": "100000",
        "PIPWORKS_IDENTITY_THROTTLE_PER_MINUTE": "1000000",
        **(argon2.env() if argon2 else {}),
    }
    return ServiceSpec(name, "pipworks_identity", env)


def backend_spec(name: str, keys: Keys, identity: ServiceSpec) -> ServiceSpec:
    """``python -m pipworks_<name>``, verifying tokens with ``identity``'s JWKS."""
    env = {**keys.env(), "PIPWORKS_IDENTITY_ADDRESS": identity.address}
    return ServiceSpec(name, f"pipworks_{name}", env)


def gateway_spec(
    routes: Mapping[str, ServiceSpec], identity: ServiceSpec, *, rate_limits: str
) -> ServiceSpec:
    """The gateway routing each package (or service) of ``routes`` to that service."""
    env = {
        "PIPWORKS_GATEWAY_ROUTES": ",".join(
            f"{package}={spec.address}" for package, spec in routes.items()
        ),
        "PIPWORKS_GATEWAY_RATE_LIMITS": rate_limits,
        "PIPWORKS_IDENTITY_ADDRESS": identity.address,
    }
    return ServiceSpec("gateway", "pipworks_gateway", env, database=False)


class Meterable(Protocol):
    name: str

    def cpu_by_pid(self) -> dict[int, float]: ...


@dataclass(frozen=True)
class Processes:
    """A process (and optionally its descendants), for :class:`CpuMeter`."""

    name: str
    pid: int
    descendants: bool = False

    def cpu_by_pid(self) -> dict[int, float]:
        try:
            root = psutil.Process(self.pid)
            members = [root, *(root.children(recursive=True) if self.descendants else [])]
        except psutil.Error:
            return {}
        return {p.pid: t for p in members if (t := _cpu(p)) is not None}


def _cpu(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def bench_process() -> Processes:
    """The bench itself (the servers it started are not counted)."""
    return Processes("bench", os.getpid())


def postgres_processes(ctx: BenchContext) -> Processes:
    """The postmaster and every backend it runs."""
    pid_file = ctx.postgres_data / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        raise BenchError(f"cannot read PostgreSQL's pid from {pid_file}") from None
    return Processes("postgresql", pid, descendants=True)


class CpuMeter:
    """CPU seconds used by some processes between :meth:`start` and :meth:`stop`.

    A process that exits in between is not counted (pooled connections do not).
    """

    def __init__(self, *items: Meterable) -> None:
        self._items = items
        self._started: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._started = {item.name: item.cpu_by_pid() for item in self._items}

    def stop(self) -> dict[str, float]:
        self.used = {}
        for item in self._items:
            before = self._started[item.name]
            self.used[item.name] = sum(
                seconds - before.get(pid, 0.0) for pid, seconds in item.cpu_by_pid().items()
            )
        return self.used


@contextlib.contextmanager
def metered(*items: Meterable) -> Iterator[CpuMeter]:
    """``with metered(a, b) as meter: ...``; afterwards ``meter.used[name]`` in CPU seconds."""
    meter = CpuMeter(*items)
    meter.start()
    yield meter
    meter.stop()
