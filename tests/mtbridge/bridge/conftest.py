"""Fixtures for the bridge tests: the MT5 simulator as a real process, the bridge
in-process on real PostgreSQL, NATS and sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from pipworks_devstack.mt5sim import Mt5SimProcess
from tests.mtbridge.bridge.support import MANAGER_LOGIN, MANAGER_PASSWORD, SimControl


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[Mt5SimProcess]:
    with Mt5SimProcess(
        tmp_path / "mt5sim.json",
        manager_login=MANAGER_LOGIN,
        manager_password=MANAGER_PASSWORD,
        log_file=tmp_path / "mt5sim.log",
    ) as process:
        yield process


@pytest.fixture
def sim(sim_process: Mt5SimProcess) -> SimControl:
    return SimControl(sim_process)


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
