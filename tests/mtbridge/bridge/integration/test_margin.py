"""Margin monitoring against the simulator: a dip below a threshold is one margin call,
however the level jitters, until it recovers above the threshold plus the margin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_devstack.mt5sim import Mt5SimProcess
from tests.helpers import eventually
from tests.mtbridge.bridge.calls import client, deposit, open_account
from tests.mtbridge.bridge.support import (
    MANAGER_LOGIN,
    MANAGER_PASSWORD,
    SERVER,
    Bridge,
    SimControl,
    running_bridge,
)
from tests.tokens import TokenAuthority


@pytest.fixture
def still_sim(tmp_path: Path) -> Iterator[SimControl]:
    """A simulator whose prices stand still, so only leverage moves the margin level."""
    with Mt5SimProcess(
        manager_login=MANAGER_LOGIN,
        manager_password=MANAGER_PASSWORD,
        tick_interval=3600,
        log_file=tmp_path / "mt5sim.log",
    ) as process:
        yield SimControl(process)


async def test_one_dip_is_one_margin_call(
    database_url: str, nats_url: str, still_sim: SimControl, token_authority: TokenAuthority
) -> None:
    sim = still_sim
    async with running_bridge(
        database_url,
        nats_url,
        sim.url,
        token_authority,
        loops=True,
        mtbridge_margin_call_levels="100,70",
        mtbridge_margin_rearm_points=Decimal(10),
    ) as bridge:
        user = uuid.uuid4()
        login = (await open_account(bridge.stub, token_authority, user, leverage=100)).account.login
        await deposit(bridge.stub, token_authority, login, "1100")
        await sim.post(
            "/sim/positions", {"login": login, "symbol": "EURUSD", "action": "buy", "volume": "1"}
        )
        # The level is proportional to the leverage: level = k * leverage.
        k = await level_of(bridge, sim, login) / 100

        async def at(target: int) -> Decimal:
            leverage = round(target / k)
            await bridge.stub.ChangeLeverage(
                pb.ChangeLeverageRequest(server=SERVER, login=login, leverage=leverage),
                metadata=client(token_authority, user),
            )
            level = await level_of(bridge, sim, login)
            await eventually(
                lambda: bridge.scalar(
                    "SELECT margin_level FROM margin_states WHERE login = $1", login
                ),
                until=lambda seen: seen == level,
            )
            return level

        async def calls() -> list[str]:
            return [e.threshold for e in await bridge.outbox("MtMarginCall")]

        assert await at(150) > 100
        assert await calls() == []
        assert await at(90) < 100
        assert await calls() == ["100"]
        for jitter in (105, 92, 104, 91):  # around 100, never back above 110
            await at(jitter)
        assert await calls() == ["100"]
        assert await at(120) >= 110  # recovered: re-armed
        assert await at(91) < 100
        assert await calls() == ["100", "100"]
        assert 50 < await at(60) < 70
        assert await calls() == ["100", "100", "70"]
        last = (await bridge.outbox("MtMarginCall"))[-1]
        assert (last.login, last.user_id, last.server) == (login, str(user), SERVER)
        assert Decimal(last.margin_level) < 70


async def level_of(bridge: Bridge, sim: SimControl, login: int) -> Decimal:
    async with sim.manager() as manager:
        return (await manager.get_account(login)).margin_level
