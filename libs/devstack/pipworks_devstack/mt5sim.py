"""``Mt5SimProcess``: the simulator as a real subprocess, for tests and benchmarks.

    with Mt5SimProcess(tmp_path / "mt5.json") as sim:
        client = Mt5Client(sim.url, sim.manager_login, sim.manager_password)
        sim.control("POST", "/sim/activity", {"logins": [500000], "deals_per_second": 50})
        sim.restart()          # SIGTERM (state saved), then start again on the same port

The port is chosen on the first start and kept across restarts, so clients keep their URL.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pipworks_devstack._process import log_tail, stop_process

__all__ = ["DEFAULT_MANAGER_LOGIN", "DEFAULT_MANAGER_PASSWORD", "Mt5SimProcess", "sim_control"]

DEFAULT_MANAGER_LOGIN = 1000
DEFAULT_MANAGER_PASSWORD = "Manager-Pass1"  # noqa: S105 - the throwaway simulator's default
_READY_PREFIX = "mt5sim listening on "


def sim_control(url: str, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    """Call the ``/sim/...`` control API of the simulator at ``url``; the decoded JSON reply."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a local http:// URL we started
        url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: HTTP {exc.code}") from None


class Mt5SimProcess:
    """Start, stop (graceful), kill and restart ``python -m pipworks_mtbridge.mt5sim``."""

    def __init__(
        self,
        state_file: Path | None = None,
        *,
        manager_login: int = DEFAULT_MANAGER_LOGIN,
        manager_password: str = DEFAULT_MANAGER_PASSWORD,
        seed: int = 1,
        port: int = 0,
        tick_interval: float = 0.25,
        save_interval: float = 5.0,
        lie: bool = False,
        tls: tuple[Path, Path] | None = None,
        log_file: Path | None = None,
        startup_timeout: float = 20.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.state_file = state_file
        self.manager_login = manager_login
        self.manager_password = manager_password
        self.port = port
        self._seed = seed
        self._tick_interval = tick_interval
        self._save_interval = save_interval
        self._lie = lie
        self._tls = tls  # (certificate chain, private key) PEM files: serve https://
        self._startup_timeout = startup_timeout
        self._extra_args = list(extra_args)  # further command-line options
        if log_file is None and state_file is not None:
            log_file = state_file.with_suffix(".log")
        self._owns_log = log_file is None
        if log_file is None:
            fd, name = tempfile.mkstemp(prefix="mt5sim-", suffix=".log")
            os.close(fd)
            log_file = Path(name)
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"Mt5SimProcess(url={self.url!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "pipworks_mtbridge.mt5sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--manager-login",
            str(self.manager_login),
            "--seed",
            str(self._seed),
            "--tick-interval",
            str(self._tick_interval),
            "--save-interval",
            str(self._save_interval),
        ]
        if self.state_file is not None:
            command += ["--state-file", str(self.state_file)]
        if self._lie:
            command.append("--lie")
        if self._tls is not None:
            command += ["--tls-cert", str(self._tls[0]), "--tls-key", str(self._tls[1])]
        return command + self._extra_args

    def start(self) -> Self:
        """Start the process and wait until it listens; ``RuntimeError`` if it does not."""
        if self.running:
            return self
        env = {**os.environ, "MT5SIM_MANAGER_PASSWORD": self.manager_password}
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(self._command(), stdout=subprocess.PIPE, stderr=log, env=env)
        self._process = process
        assert process.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                self.kill()
                raise RuntimeError(f"mt5sim did not start:\n{log_tail(self.log_file, 30)}")
            ready, _, _ = select.select([process.stdout], [], [], min(remaining, 0.2))
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        text = line.decode().strip()
        if not text.startswith(_READY_PREFIX):
            self.kill()
            raise RuntimeError(f"unexpected mt5sim output {text!r}")
        self.url = text.removeprefix(_READY_PREFIX)
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (the simulator saves its state); SIGKILL after ``timeout``."""
        if self._process is not None:
            stop_process(self._process, signal.SIGTERM, timeout)
        return self._reap()

    def kill(self) -> int | None:
        """SIGKILL: no graceful shutdown, only what the last periodic save wrote survives."""
        if self._process is not None:
            stop_process(self._process, signal.SIGKILL, 5.0)
        return self._reap()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def _reap(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def control(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Call a ``/sim/...`` control endpoint; the decoded JSON reply (plain HTTP only)."""
        return sim_control(self.url, method, path, body, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._owns_log and exc_type is None:  # keep the log of a failed test
            self.log_file.unlink(missing_ok=True)
