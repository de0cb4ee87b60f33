"""A gRPC load generator in its own process, so the client's CPU is not the bench's.

``python -m bench._loadgen`` reads one JSON job per line on stdin and answers each with
one JSON line on stdout, until stdin closes. A job calls one unary method with raw bytes
(no serializers: the client does the least work possible) ``calls`` times, at most
``concurrency`` at once, on one long-lived ``grpc.aio`` channel per target::

    {"target": "127.0.0.1:7063", "method": "/pkg.Service/Method", "request": "<base64>",
     "metadata": [["authorization", "Bearer ..."]], "calls": 2000, "concurrency": 1}
    -> {"seconds": 1.23, "latencies": [...]}        or        {"error": "UNAVAILABLE: ..."}

:class:`LoadGenerator` is the bench-side handle: it starts the process, sends jobs and
always kills the process on the way out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import psutil

from bench._harness import BenchError

STOP_SECONDS = 5.0
ANSWER_LIMIT = 64 * 1024 * 1024  # one answer line carries every latency of a job


@dataclass(frozen=True)
class Job:
    target: str
    method: str
    request: bytes
    metadata: tuple[tuple[str, str], ...]
    calls: int
    concurrency: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "method": self.method,
                "request": base64.b64encode(self.request).decode(),
                "metadata": [list(pair) for pair in self.metadata],
                "calls": self.calls,
                "concurrency": self.concurrency,
            }
        )


@dataclass(frozen=True)
class Outcome:
    """``calls`` calls over ``seconds`` of wall time; each call's latency in seconds."""

    calls: int
    seconds: float
    latencies: list[float]


# -- the bench side ----------------------------------------------------------------------


class LoadGenerator:
    """The running load-generator process; :meth:`run` one job at a time."""

    name = "client"

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid = proc.pid

    async def run(self, job: Job) -> Outcome:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(job.to_json().encode() + b"\n")
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise BenchError(f"the load generator exited (code {await self._proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"{job.method} on {job.target}: {answer['error']}")
        return Outcome(job.calls, answer["seconds"], answer["latencies"])

    def cpu_by_pid(self) -> dict[int, float]:
        try:
            times = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return {}
        return {self.pid: times.user + times.system}


@asynccontextmanager
async def load_generator() -> AsyncIterator[LoadGenerator]:
    """Start ``python -m bench._loadgen``; always stop it (it holds no state worth keeping)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._loadgen",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,  # Ctrl-C reaches the bench, which stops this process
        limit=ANSWER_LIMIT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield LoadGenerator(proc)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # immediate, so nothing is left even if the wait is cut short
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)


# -- the process side --------------------------------------------------------------------


class _Client:
    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, target: str) -> grpc.aio.Channel:
        if target not in self._channels:
            self._channels[target] = grpc.aio.insecure_channel(target)
        return self._channels[target]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        call = self.channel(job["target"]).unary_unary(job["method"])
        request = base64.b64decode(job["request"])
        metadata: Sequence[tuple[str, str]] = tuple(tuple(pair) for pair in job["metadata"])
        count, concurrency = int(job["calls"]), int(job["concurrency"])
        latencies: list[float] = []
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while next_index < count:
                next_index += 1
                started = time.perf_counter()
                await call(request, metadata=metadata, timeout=30)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
        except grpc.aio.AioRpcError as exc:
            return {"error": f"{exc.code().name}: {exc.details()}"}
        return {"seconds": time.perf_counter() - started, "latencies": latencies}


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    client = _Client()
    try:
        while line := await reader.readline():
            answer = await client.run(json.loads(line))
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(_serve())
