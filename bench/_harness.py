"""What every bench shares: the infrastructure, its context object, results and timing."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from pipworks_devstack import EmbeddedPostgres, NatsServer

_T = TypeVar("_T")

SCALE_ENV = "BENCH_SCALE"
QUICK_SCALE = 0.1
POLL_SECONDS = 0.005
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POSTGRES_DATA = Path("postgres", "data")  # under the run's workdir


class BenchError(RuntimeError):
    """A bench could not produce a trustworthy figure (lost messages, a stall...)."""


@dataclass(frozen=True)
class Result:
    """One figure: a throughput (``count`` in ``seconds``), latency samples, or a plain
    quantity (``value`` in ``unit``, e.g. CPU seconds).

    ``key`` identifies it within its bench; a platform figure names the raw figure it is
    compared with in ``baseline``. ``latencies`` are per-event seconds.
    """

    key: str
    label: str
    count: int
    seconds: float | None = None
    latencies: tuple[float, ...] = ()
    baseline: str | None = None
    value: float | None = None
    unit: str = ""

    @property
    def rate(self) -> float | None:
        """Events per second, when this figure is a throughput."""
        if self.seconds is None or self.seconds <= 0:
            return None
        return self.count / self.seconds

    def percentile(self, fraction: float) -> float | None:
        """The latency at ``fraction`` (0..1) in seconds, nearest-rank; None without samples."""
        return percentile(self.latencies, fraction)


def throughput(
    key: str, label: str, count: int, seconds: float, *, baseline: str | None = None
) -> Result:
    return Result(key=key, label=label, count=count, seconds=seconds, baseline=baseline)


def latency(
    key: str, label: str, samples: Sequence[float], *, baseline: str | None = None
) -> Result:
    return Result(
        key=key, label=label, count=len(samples), latencies=tuple(samples), baseline=baseline
    )


def quantity(
    key: str, label: str, value: float, unit: str, *, count: int = 0, baseline: str | None = None
) -> Result:
    """A measured amount that is neither a rate nor a latency (CPU seconds, bytes...)."""
    return Result(key=key, label=label, count=count, value=value, unit=unit, baseline=baseline)


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class BenchContext:
    """Shared by every bench of a run: servers, scratch space and the scale factor."""

    workdir: Path
    postgres: EmbeddedPostgres
    nats_server: NatsServer
    scale: float = 1.0

    @property
    def postgres_data(self) -> Path:
        """PostgreSQL's data directory (``postmaster.pid`` names the server's pid)."""
        return self.workdir / POSTGRES_DATA

    def scaled(self, count: int, minimum: int = 20) -> int:
        """``count`` at this run's scale, never below ``minimum``."""
        return max(minimum, round(count * self.scale))

    @asynccontextmanager
    async def database(self, prefix: str) -> AsyncIterator[str]:
        """A fresh database and role (asyncpg URL), dropped on exit."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        url = await asyncio.to_thread(self.postgres.ensure_database, name)
        try:
            yield url
        finally:
            if self.postgres.is_running:
                await asyncio.to_thread(self.postgres.drop_database, name)

    @asynccontextmanager
    async def nats_client(self) -> AsyncIterator[NATS]:
        """A NATS connection to the bench's server, closed on exit."""
        client = await nats.connect(
            self.nats_server.url, connect_timeout=5, max_reconnect_attempts=3
        )
        try:
            yield client
        finally:
            await client.close()


@contextmanager
def infrastructure(scale: float) -> Iterator[BenchContext]:
    """Start PostgreSQL and nats-server in a temporary directory; always tear them down."""
    workdir = Path(tempfile.mkdtemp(prefix="pipworks-bench-"))
    postgres = EmbeddedPostgres(workdir / POSTGRES_DATA)
    nats_server = NatsServer(workdir / "nats" / "store")
    servers = ExitStack()
    try:
        servers.enter_context(postgres)
        servers.enter_context(nats_server)
        yield BenchContext(workdir, postgres, nats_server, scale)
    finally:
        with signals_held():
            servers.close()
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM meanwhile, so a second Ctrl-C cannot orphan a server."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def scale_from(quick: bool, explicit: float | None) -> float:
    """``--scale`` wins, then ``--quick``, then ``$BENCH_SCALE``, else 1."""
    if explicit is not None:
        return explicit
    if quick:
        return QUICK_SCALE
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise BenchError(f"{SCALE_ENV} must be a positive number, not {raw!r}") from None
    if value <= 0:
        raise BenchError(f"{SCALE_ENV} must be a positive number, not {raw!r}")
    return value


def warmup_size(count: int) -> int:
    """A short warm-up: 5% of the measured count, between 20 and 1,000."""
    return min(1000, max(20, count // 20))


async def warm_then_measure(phase: Callable[[int], Awaitable[_T]], count: int) -> _T:
    """Run ``phase`` once small to warm caches and connections; return the real run."""
    await phase(warmup_size(count))
    return await phase(count)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, poll: float = POLL_SECONDS
) -> None:
    """Poll ``check`` until true; BenchError after ``within`` seconds naming ``what``."""
    deadline = time.perf_counter() + within
    while not await check():
        if time.perf_counter() >= deadline:
            raise BenchError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(poll)


async def paced(count: int, rate: float, produce: Callable[[int], Awaitable[None]]) -> None:
    """Call ``produce(i)`` ``count`` times on an open-loop schedule of ``rate`` per second."""
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await produce(index)


def patience(count: int, per_second: float = 50.0) -> float:
    """A generous timeout for moving ``count`` events: stalls fail, slow machines do not."""
    return 30.0 + count / per_second


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask); the servers it starts inherit it."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def note_load() -> None:
    """The machine's load now: other work on the same cores skews every figure above it."""
    one, five, _ = os.getloadavg()
    note(
        f"load average at the end: {one:.2f} (1 min), {five:.2f} (5 min) on "
        f"{usable_cores()} usable cores; anything else running skews these figures"
    )


_notes: list[str] = []


def note(text: str) -> None:
    """A line of context printed above a bench's tables (and kept for ``results.md``)."""
    _notes.append(text)
    print(f"   {text}", flush=True)


def take_notes() -> list[str]:
    """The notes printed since the last call, oldest first."""
    taken = list(_notes)
    _notes.clear()
    return taken


async def delete_streams(js: JetStreamContext) -> None:
    """Delete every JetStream stream, and with them their consumers."""
    # Listing is paginated and deleting shifts the pages: list again until empty.
    while streams := await js.streams_info():
        for stream in streams:
            if stream.config.name:
                await js.delete_stream(stream.config.name)


class LatencyClock:
    """Per-event latency: when each event was sent, when it arrived (both perf_counter)."""

    def __init__(self) -> None:
        self._sent: dict[str, float] = {}
        self._arrived: dict[str, float] = {}

    def sent(self, key: str) -> None:
        self._sent[key] = time.perf_counter()

    def arrived(self, key: str) -> None:
        self._arrived.setdefault(key, time.perf_counter())

    def count_arrived(self) -> int:
        return len(self._arrived)

    def latencies(self) -> list[float]:
        """Seconds from sent to arrived, for every event seen at both ends."""
        return [
            self._arrived[key] - sent for key, sent in self._sent.items() if key in self._arrived
        ]
