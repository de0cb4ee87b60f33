"""NatsServer against the real nats-server: health, and JetStream data across restarts."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from pipworks_devstack import NatsError, NatsServer
from pipworks_devstack.testing import accepts_connections, free_port


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of its own, for tests that stop or kill it."""
    server = NatsServer(tmp_path / "nats" / "store")
    server.start()
    yield server
    server.stop()


async def _publish(url: str, stream: str, payload: bytes) -> None:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        ack = await js.publish(f"{stream.lower()}.created", payload)
        assert ack.seq == 1
    finally:
        await client.close()


async def _first_message(url: str, stream: str) -> tuple[int, bytes]:
    client = await nats.connect(url)
    try:
        jsm = client.jsm()
        info = await jsm.stream_info(stream)
        message = await jsm.get_msg(stream, 1)
        assert message.data is not None
        return info.state.messages, message.data
    finally:
        await client.close()


def test_session_server_is_healthy_with_jetstream(nats_server: NatsServer) -> None:
    assert nats_server.is_running
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    with urllib.request.urlopen(f"{nats_server.monitor_url}/jsz", timeout=5) as reply:  # noqa: S310
        jsz = json.load(reply)
    assert jsz["config"]["store_dir"].startswith(str(nats_server.store_dir))
    assert "Server is ready" in nats_server.log_path.read_text()


async def test_stream_survives_stop_and_start(private_nats: NatsServer) -> None:
    await _publish(private_nats.url, "ORDERS", b"order-1")
    url, monitor_port = private_nats.url, private_nats.monitor_port

    private_nats.stop()
    assert not accepts_connections(private_nats.port)
    private_nats.start()

    assert (private_nats.url, private_nats.monitor_port) == (url, monitor_port)
    assert await _first_message(private_nats.url, "ORDERS") == (1, b"order-1")


async def test_stream_survives_kill_and_start(private_nats: NatsServer) -> None:
    await _publish(private_nats.url, "DEALS", b"deal-1")

    private_nats.kill()
    assert not private_nats.is_running
    assert not accepts_connections(private_nats.port)
    private_nats.start()

    assert await _first_message(private_nats.url, "DEALS") == (1, b"deal-1")


def test_fixed_ports_are_used_as_given(tmp_path: Path) -> None:
    port, monitor_port = free_port(), free_port()
    with NatsServer(tmp_path / "store", port=port, monitor_port=monitor_port) as server:
        assert server.url == f"nats://127.0.0.1:{port}"
        assert accepts_connections(port)
        assert accepts_connections(monitor_port)
    assert not accepts_connections(port)


def test_taken_port_is_reported(tmp_path: Path, nats_url: str) -> None:
    taken = int(nats_url.rsplit(":", 1)[1])
    clash = NatsServer(tmp_path / "store", port=taken, monitor_port=free_port())
    with pytest.raises(NatsError, match="already in use"):
        clash.start()
    assert not clash.is_running
