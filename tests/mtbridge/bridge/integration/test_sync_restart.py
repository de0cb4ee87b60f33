"""10,000 deals with the bridge killed mid-stream: every deal is published exactly once,
in order per login, with no gap and no duplicate across the restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from pipworks_devstack.testing import free_port
from tests.harness import sql
from tests.helpers import eventually, wait_serving
from tests.mtbridge.bridge.calls import deposit, open_account
from tests.mtbridge.bridge.support import SimControl, env_for, running_bridge, stream_events
from tests.tokens import TokenAuthority

LOGINS = 4
DEALS_PER_LOGIN = 2_500
TOTAL = LOGINS * DEALS_PER_LOGIN
DEALS = "pipworks.mtbridge.v1.deal.executed"


class BridgeProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env = env
        self._log = log
        self.port = int(env["PIPWORKS_GRPC_ADDRESS"].rsplit(":", 1)[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipworks_mtbridge"], env=self._env, stdout=log, stderr=log
            )
        wait_serving(self.proc, self.port, describe=self._tail)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def _tail(self) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])


@pytest.mark.slow
async def test_a_bridge_killed_mid_stream_publishes_every_deal_exactly_once(
    database_url: str,
    nats_url: str,
    sim: SimControl,
    nats_client: NATS,
    token_authority: TokenAuthority,
    tmp_path: Path,
) -> None:
    async with running_bridge(database_url, nats_url, sim.url, token_authority) as bridge:
        logins = []
        for _ in range(LOGINS):
            login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
            await deposit(bridge.stub, token_authority, login, "10000000")
            logins.append(login)

    env = env_for(
        database_url,
        nats_url,
        sim.url,
        grpc_address=f"127.0.0.1:{free_port()}",
        mtbridge_sync_batch_size=250,
    )
    process = BridgeProcess(env, tmp_path / "bridge.log")
    await asyncio.to_thread(process.start)
    try:
        for login in logins:
            await sim.post("/sim/deals", {"login": login, "count": DEALS_PER_LOGIN})

        async def mirrored() -> int:
            return (await sql(database_url, "SELECT count(*) FROM deals"))[0][0]

        async def unpublished() -> int:
            query = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
            return (await sql(database_url, query))[0][0]

        await eventually(mirrored, until=lambda n: n >= LOGINS + 1_000, timeout=60, interval=0.005)
        process.kill()
        at_kill = await mirrored()
        assert at_kill < LOGINS + TOTAL, "the bridge finished before it could be killed"

        await asyncio.to_thread(process.start)
        await eventually(mirrored, until=lambda n: n == LOGINS + TOTAL, timeout=120)
        await eventually(unpublished, until=lambda n: n == 0, timeout=60)
        await asyncio.sleep(1)  # anything published late would show up as a duplicate
        events = await stream_events(nats_client.jetstream(), DEALS)
        assert process.terminate() == 0
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.kill()

    assert len(events) == TOTAL
    assert len({p.event_id for p in events}) == TOTAL
    per_login: dict[int, list[int]] = defaultdict(list)
    for published in events:
        per_login[published.event.login].append(published.event.deal)
    assert sorted(per_login) == sorted(logins)
    for tickets in per_login.values():
        assert len(tickets) == DEALS_PER_LOGIN
        assert tickets == sorted(tickets)
