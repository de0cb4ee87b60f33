"""``python -m pipworks_gateway`` on the platform runtime: start-up, proxying, metrics,
reflection, clean SIGTERM, and refusal to start with bad routes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks_devstack.testing import free_port
from tests.helpers import wait_serving


def gateway_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env.update({"PIPWORKS_METRICS_PORT": "0", **settings})
    return env


@pytest.fixture
def run_gateway(tmp_path) -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def run(**settings: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"gateway-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipworks_gateway"],
                env=gateway_env(**settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return proc, log

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_gateway_process_proxies_and_stops_cleanly(
    run_gateway, backend, nats_url, token_authority
):
    port, metrics_port = free_port(), free_port()
    proc, log = run_gateway(
        PIPWORKS_GATEWAY_ROUTES=(
            f"pipworks.identity.v1={backend.address},pipworks.ib.v1.IbService={backend.address}"
        ),
        PIPWORKS_GRPC_ADDRESS=f"127.0.0.1:{port}",
        PIPWORKS_METRICS_PORT=str(metrics_port),
        PIPWORKS_NATS_URL=nats_url,
    )
    await asyncio.to_thread(wait_serving, proc, port, describe=log.read_text)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        info = ib_service_pb2_grpc.IbServiceStub(channel).GetServiceInfo
        request = ib_service_pb2.GetServiceInfoRequest()
        admin = token_authority.metadata(roles=("admin",), aal=2)
        assert (await info(request, metadata=admin, timeout=10)).info.name
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await info(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    url = f"http://127.0.0.1:{metrics_port}/metrics"
    body = (await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)).read().decode()
    assert (
        'pipworks_rpc_server_duration_seconds_count{code="OK",'
        'method="/pipworks.ib.v1.IbService/GetServiceInfo",service="gateway"} 1.0'
    ) in body

    proc.terminate()
    assert await asyncio.to_thread(proc.wait, 20) == 0


def test_bad_routes_stop_start_up_naming_the_variable(run_gateway):
    proc, log = run_gateway(PIPWORKS_GATEWAY_ROUTES="pipworks.ib.v1=ib, pipworks.nope.v1=x:1")
    assert proc.wait(timeout=30) == 2
    output = log.read_text()
    assert "PIPWORKS_GATEWAY_ROUTES" in output
    assert "must be HOST:PORT" in output
