"""One service subprocess: spawn, pass its logs through, wait for SERVING, stop it.

Service output is relayed to the runner's own stdout/stderr unchanged (it is JSON log
lines already), while the last lines are kept so that a service which dies or never
becomes healthy can be reported with its final words instead of a bare exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from pipworks_devstack.health import wait_serving

_log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_LISTEN_POLL_INTERVAL = 0.2


class ServiceFailed(Exception):
    """A service exited or never became SERVING; the message says which and why."""

    def __init__(self, name: str, reason: str, last_lines: list[str]) -> None:
        self.name = name
        self.reason = reason
        self.last_lines = last_lines
        message = f"service {name!r} {reason}"
        if last_lines:
            shown = "\n".join(f"  | {line}" for line in last_lines)
            message += f"; its last output:\n{shown}"
        else:
            message += " (it wrote no output)"
        super().__init__(message)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ServiceProcess:
    """``python -m <module>`` for one service, in its own session.

    Its own session keeps a terminal Ctrl-C from reaching it directly: the runner
    decides the shutdown order.
    """

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        grpc_target: str,
        *,
        args: Sequence[str] = (),
        readiness: str = "grpc",
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
        tail_lines: int = 30,
    ) -> None:
        self.name = name
        self.module = module
        self.grpc_target = grpc_target
        self._args = list(args)
        self._readiness = readiness
        self._env = dict(env)
        self._stdout = stdout or sys.stdout.buffer
        self._stderr = stderr or sys.stderr.buffer
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self._args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(self._proc.stdout, self._stdout)),
            asyncio.create_task(self._pump(self._proc.stderr, self._stderr)),
        ]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def last_lines(self) -> list[str]:
        return list(self._tail)

    async def wait(self) -> int:
        """Wait for the process to exit and its output to be fully relayed."""
        proc = self._require_started()
        returncode = await proc.wait()
        await asyncio.gather(*self._pumps)
        return returncode

    async def wait_serving(self, within: float) -> None:
        """Poll grpc.health.v1 ``Check`` (whole server) until SERVING.

        Raises :class:`ServiceFailed` if the process exits first or ``within`` seconds pass.
        """
        if self._readiness == "tcp":
            await self._wait_listening(within)
            return
        proc = self._require_started()
        failure = await wait_serving(
            self.grpc_target, within, alive=lambda: proc.returncode is None
        )
        if failure is None:
            return
        if failure == "exited":
            returncode = await self.wait()
            failure = f"{describe_exit(returncode)} before it became SERVING"
        raise ServiceFailed(self.name, failure, self.last_lines())

    async def _wait_listening(self, within: float) -> None:
        """Readiness for a non-gRPC process: its port accepts TCP connections."""
        proc = self._require_started()
        host, _, port = self.grpc_target.rpartition(":")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if proc.returncode is not None:
                returncode = await self.wait()
                raise ServiceFailed(
                    self.name, f"{describe_exit(returncode)} before it listened", self.last_lines()
                )
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            except (OSError, TimeoutError):
                if loop.time() > deadline:
                    raise ServiceFailed(
                        self.name,
                        f"did not listen on {self.grpc_target} within {within:.0f}s",
                        self.last_lines(),
                    ) from None
                await asyncio.sleep(_LISTEN_POLL_INTERVAL)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, grace: float) -> int:
        """SIGTERM (the service's ordered shutdown) and wait; SIGKILL after ``grace`` seconds."""
        proc = self._require_started()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                return await asyncio.wait_for(self.wait(), grace)
            except TimeoutError:
                _log.warning(
                    "%s did not stop within %.0fs of SIGTERM; killing it", self.name, grace
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        return await self.wait()

    def _require_started(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise RuntimeError(f"service {self.name} was not started")
        return self._proc

    async def _pump(self, stream: asyncio.StreamReader, sink: BinaryIO) -> None:
        """Relay bytes as they come, remembering complete lines for error reports."""
        partial = b""
        sink_ok = True
        while chunk := await stream.read(_CHUNK):
            if sink_ok:
                try:
                    sink.write(chunk)
                    sink.flush()
                except (OSError, ValueError):
                    # Our own output is gone (closed pipe): keep draining so the child
                    # never blocks on a full pipe.
                    sink_ok = False
            *lines, partial = (partial + chunk).split(b"\n")
            self._tail.extend(line.decode("utf-8", errors="replace") for line in lines)
            if len(partial) > _CHUNK:
                self._tail.append(partial.decode("utf-8", errors="replace"))
                partial = b""
        if partial:
            self._tail.append(partial.decode("utf-8", errors="replace"))
