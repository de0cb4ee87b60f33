"""Session upkeep against a real simulator: re-authentication, keep-alive and retries."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import BalanceType, Mt5Client, Mt5Unavailable
from tests.helpers import eventually
from tests.mtbridge.mt5.conftest import new_user


async def test_reauthenticates_after_the_server_forgets_the_session(sim: Mt5SimProcess) -> None:
    async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
        user = await new_user(mt5)
        assert sim.control("POST", "/sim/sessions/drop")["dropped"] >= 1
        # the next call gets HTTP 403, re-runs the handshake and repeats itself once
        assert (await mt5.get_user(user.login)).login == user.login
        # even a write is repeated after a 403: the server refused it before running it
        sim.control("POST", "/sim/sessions/drop")
        ticket = await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(5), "x")
        assert ticket > 0
        assert (await mt5.get_account(user.login)).balance == Decimal(5)


async def test_concurrent_calls_share_one_reauthentication(sim: Mt5SimProcess) -> None:
    async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
        user = await new_user(mt5)
        sim.control("POST", "/sim/sessions/drop")
        results = await asyncio.gather(*(mt5.get_user(user.login) for _ in range(20)))
        assert {r.login for r in results} == {user.login}


async def test_reauthenticates_after_the_simulator_restarts(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        user = await new_user(mt5)
        fresh_sim.restart()  # the connection and every session are gone
        assert (await mt5.get_user(user.login)).login == user.login
        fresh_sim.kill()
        fresh_sim.start()
        assert (await mt5.get_user(user.login)).login == user.login


async def test_keepalive_pings_and_restores_the_session(sim: Mt5SimProcess) -> None:
    async with Mt5Client(
        sim.url, sim.manager_login, sim.manager_password, keepalive_interval=0.1
    ) as mt5:
        await mt5.ping()
        sim.control("POST", "/sim/sessions/drop")
        # with no call of ours, the keep-alive notices the 403 and authenticates again
        await eventually(
            lambda: asyncio.to_thread(sim.control, "GET", "/sim/state"),
            until=lambda s: s["sessions"] >= 1,
            timeout=5,
        )
        assert mt5.authenticated


async def test_reads_are_retried_through_transient_failures(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(
        fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password, read_retries=3
    ) as mt5:
        user = await new_user(mt5)
        fresh_sim.control("POST", "/sim/fail", {"count": 2, "status": 503})
        assert (await mt5.get_user(user.login)).login == user.login
        fresh_sim.control("POST", "/sim/fail", {"count": 10, "status": 500})
        with pytest.raises(Mt5Unavailable) as caught:
            await mt5.get_user(user.login)
        assert caught.value.maybe_applied is False
        fresh_sim.control("POST", "/sim/fail", {"count": 0})


async def test_money_moving_writes_are_never_repeated_blindly(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(
        fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password, read_retries=3
    ) as mt5:
        user = await new_user(mt5)
        fresh_sim.control("POST", "/sim/fail", {"count": 1, "status": 503})
        with pytest.raises(Mt5Unavailable) as caught:
            await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(10), "dep-1")
        assert caught.value.maybe_applied is True  # the caller reconciles, e.g. by comment
        state = fresh_sim.control("GET", "/sim/state")
        assert state["deals"] == 0  # the simulated outage really kept it from running
        assert (await mt5.get_account(user.login)).balance == 0


async def test_server_down_then_back(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(
        fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password, read_retries=1
    ) as mt5:
        user = await new_user(mt5)
        fresh_sim.stop()
        with pytest.raises(Mt5Unavailable):
            await mt5.get_user(user.login)
        with pytest.raises(Mt5Unavailable) as caught:
            await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(1), "dep-2")
        assert caught.value.maybe_applied is False  # refused connections never ran it
        fresh_sim.start()
        assert (await mt5.get_user(user.login)).login == user.login
