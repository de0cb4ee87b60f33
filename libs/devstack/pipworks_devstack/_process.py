"""Small helpers shared by the server wrappers: ports, log tails, stopping processes."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

LOOPBACK = "127.0.0.1"

_log = logging.getLogger(__name__)


_LOWEST_PICKED_PORT = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_floor() -> int:
    """First port the kernel hands to outgoing connections (32768 by default)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the caller still has to win the race).

    Picked below the kernel's ephemeral range: a port the kernel chose (bind to 0) can be
    handed out again as the source port of an outgoing connection before our server
    binds it, which makes the bind fail now and then on a busy test machine.
    """
    ceiling = _ephemeral_floor()
    if ceiling - _LOWEST_PICKED_PORT > 1000:
        for _ in range(50):
            port = random.randrange(_LOWEST_PICKED_PORT, ceiling)  # noqa: S311 - not security
            if port_is_free(port, host):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def accepts_connections(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 20, since: int = 0) -> str:
    """The last ``lines`` lines of a log file written after byte offset ``since``."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            tail = deque(log, maxlen=lines)
    except OSError:
        return ""
    return b"".join(tail).decode("utf-8", errors="replace").rstrip()


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> int | None:
    """Send ``sig`` and wait; SIGKILL if it is still alive after ``timeout`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.warning("pid %d ignored %s for %.0fs; killing it", proc.pid, sig.name, timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return proc.wait()


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and all its descendants at once, as a crash would."""
    try:
        victims = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        victims = []
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    proc.wait()
    wait_gone(victims, timeout=10)


def wait_gone(procs: list[psutil.Process], timeout: float) -> bool:
    """Wait until every process has exited; ``False`` if some outlive ``timeout``.

    A zombie counts as gone: once orphaned it is only reaped by init, and some container
    init processes never reap.
    """
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [p for p in alive if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return not alive


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_leftover(pid: int, marker: str, sig: signal.Signals, timeout: float = 30.0) -> bool:
    """Stop a server a killed predecessor left behind, if ``pid`` really is one.

    ``marker`` (the data or store directory) must appear on its command line, so a
    recycled pid that now belongs to an unrelated process is never touched.
    """
    try:
        leftover = psutil.Process(pid)
        if pid == os.getpid() or marker not in " ".join(leftover.cmdline()):
            return False
        _log.warning("stopping a leftover server (pid %d) still running on %s", pid, marker)
        leftover.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    if not wait_gone([leftover], timeout):
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
        wait_gone([leftover], 10)
    return True


class ManagedServer:
    """Lifecycle shared by the embedded servers: restart, context manager, liveness.

    Subclasses own one child process in ``_proc`` and implement ``start``/``stop``.
    """

    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def host(self) -> str:
        return LOOPBACK
