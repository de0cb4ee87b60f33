"""A stand-in service for the runner's end-to-end tests: grpc.aio with the standard health
service, configured only through the environment like a real Pipworks service.

Test knobs (environment):
  FAKE_ENV_DUMP      write the PIPWORKS_*/OTEL_* variables it received to this JSON file
  FAKE_FAIL_AT_START exit with this code before serving (after a line on stderr)
  FAKE_EXIT_AFTER    seconds after becoming SERVING to exit with FAKE_EXIT_CODE (default 4)
  FAKE_NOT_SERVING   answer health checks with NOT_SERVING forever
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health as health_module
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _log(event: str, **fields: object) -> None:
    record = {"event": event, "service": os.environ.get("OTEL_SERVICE_NAME"), **fields}
    print(json.dumps(record), flush=True)


def _dump_env(path: str) -> None:
    received = {k: v for k, v in os.environ.items() if k.startswith(("PIPWORKS_", "OTEL_"))}
    Path(path).write_text(json.dumps({"pid": os.getpid(), "env": received}))


async def serve() -> int:
    server = grpc.aio.server()
    health = health_module.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if os.environ.get("FAKE_NOT_SERVING"):
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    server.add_insecure_port(os.environ["PIPWORKS_GRPC_ADDRESS"])
    await server.start()
    _log("serving", address=os.environ["PIPWORKS_GRPC_ADDRESS"])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    exit_code = 0
    if delay := os.environ.get("FAKE_EXIT_AFTER"):
        try:
            await asyncio.wait_for(stop.wait(), float(delay))
        except TimeoutError:
            exit_code = int(os.environ.get("FAKE_EXIT_CODE", "4"))
            _log("crashing on purpose", exit_code=exit_code)
    else:
        await stop.wait()

    await health.enter_graceful_shutdown()
    await server.stop(grace=2)
    _log("stopped")
    return exit_code


def main() -> int:
    if code := os.environ.get("FAKE_FAIL_AT_START"):
        print("fatal: refusing to start as asked by FAKE_FAIL_AT_START", file=sys.stderr)
        return int(code)
    if dump := os.environ.get("FAKE_ENV_DUMP"):
        _dump_env(dump)
    return asyncio.run(serve())


if __name__ == "__main__":
    raise SystemExit(main())
