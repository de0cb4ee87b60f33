"""Market activity generation on the simulator: rate, chosen logins, disabled trading."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import BalanceType, DealEntry, Mt5Client, UserRights
from pipworks_mtbridge.mt5sim.cli import AMBIENT_ENV, parse_args
from tests.helpers import eventually
from tests.mtbridge.mt5.conftest import new_user


async def _trader(mt5: Mt5Client) -> int:
    user = await new_user(mt5, leverage=500)
    await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(1_000_000), "dep")
    return user.login


async def test_activity_runs_at_the_requested_rate_for_chosen_logins_only(
    fresh_sim: Mt5SimProcess,
) -> None:
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        a, b, bystander = await _trader(mt5), await _trader(mt5), await _trader(mt5)
        start = datetime.now(UTC) + timedelta(milliseconds=2)  # after the deposits
        began = time.monotonic()
        started = fresh_sim.control(
            "POST",
            "/sim/activity",
            {
                "logins": [a, b],
                "deals_per_second": 100,
                "symbols": ["EURUSD", "XAUUSD"],
                "open_close_mix": 0.6,
                "duration": 2,
            },
        )["answer"]
        await asyncio.sleep(2.5)
        elapsed = min(time.monotonic() - began, 2.0)
        report = fresh_sim.control("GET", f"/sim/activity/{started['id']}")["answer"]
        assert not report["running"]
        assert 0.7 * 100 * elapsed <= report["produced"] <= 1.2 * 100 * 2

        deals = await mt5.get_deals(
            group="real\\*", since=start, until=datetime.now(UTC) + timedelta(seconds=1)
        )
        assert len(deals) == report["produced"]
        assert {d.login for d in deals} == {a, b}
        assert bystander not in {d.login for d in deals}
        assert {d.symbol for d in deals} <= {"EURUSD", "XAUUSD"}
        opens = [d for d in deals if d.entry == DealEntry.IN]
        closes = [d for d in deals if d.entry == DealEntry.OUT]
        assert opens
        assert closes
        positions = await mt5.get_positions(logins=[a, b])
        assert len(positions) == len(opens) - len(closes)  # each close ends one position


async def test_activity_stops_for_a_login_whose_trading_is_disabled(
    fresh_sim: Mt5SimProcess,
) -> None:
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        active, blocked = await _trader(mt5), await _trader(mt5)
        started = fresh_sim.control(
            "POST",
            "/sim/activity",
            {"logins": [active, blocked], "deals_per_second": 80},
        )["answer"]
        await asyncio.sleep(0.5)
        user = await mt5.get_user(blocked)
        await mt5.update_user(blocked, rights=user.rights | UserRights.TRADE_DISABLED)
        cut = datetime.now(UTC) + timedelta(milliseconds=50)
        await asyncio.sleep(1.0)
        fresh_sim.control("DELETE", f"/sim/activity/{started['id']}")
        later = datetime.now(UTC) + timedelta(seconds=1)

        before = await mt5.get_deals(logins=[blocked], since=cut - timedelta(minutes=1), until=cut)
        after = await mt5.get_deals(logins=[blocked], since=cut, until=later)
        assert len(before) > 1  # it traded until disabled
        assert after == []
        assert await mt5.get_deals(logins=[active], since=cut, until=later)
        report = fresh_sim.control("GET", f"/sim/activity/{started['id']}")["answer"]
        assert report["skipped"] > 0


async def test_injected_deals_refuse_a_disabled_login(
    sim: Mt5SimProcess, client: Mt5Client
) -> None:
    login = await _trader(client)
    await client.update_user(login, rights=int(UserRights.ENABLED | UserRights.TRADE_DISABLED))
    reply = sim.control("POST", "/sim/deals", {"login": login, "count": 5})
    assert reply["retcode"].startswith("10017")


async def test_ambient_activity_trades_every_funded_login_including_later_ones(
    tmp_path: Path,
) -> None:
    with Mt5SimProcess(
        tmp_path / "state.json", extra_args=["--ambient-deals-per-second", "40"]
    ) as sim:
        [ambient] = sim.control("GET", "/sim/activity")["answer"]
        assert ambient["logins"] == "*"
        assert ambient["running"]
        async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
            early = await _trader(mt5)
            unfunded = (await new_user(mt5)).login
            blocked = await _trader(mt5)
            await mt5.update_user(
                blocked, rights=int(UserRights.ENABLED | UserRights.TRADE_DISABLED)
            )
            since = datetime.now(UTC) - timedelta(minutes=1)

            async def traded(login: int) -> bool:
                until = datetime.now(UTC) + timedelta(seconds=1)
                deals = await mt5.get_deals(logins=[login], since=since, until=until)
                return any(d.symbol for d in deals)

            await eventually(lambda: traded(early), timeout=10)
            later = await _trader(mt5)  # added while the activity runs
            await eventually(lambda: traded(later), timeout=10)
            assert not await traded(unfunded)  # nothing to open a position with
            assert not await traded(blocked)

        assert sim.control("DELETE", f"/sim/activity/{ambient['id']}")["stopped"] == 1
        resumed = sim.control("POST", "/sim/activity", {"logins": "*", "deals_per_second": 1})
        assert resumed["answer"]["logins"] == "*"


async def test_sim_users_shows_the_mt5_user_record_and_account(
    sim: Mt5SimProcess, client: Mt5Client
) -> None:
    login = await _trader(client)
    await client.update_user(login, rights=int(UserRights.ENABLED | UserRights.TRADE_DISABLED))
    answer = sim.control("GET", f"/sim/users/{login}")["answer"]
    assert answer["user"]["Login"] == str(login)
    assert answer["user"]["Group"] == "real\\standard"
    assert int(answer["user"]["Rights"]) & UserRights.TRADE_DISABLED
    assert Decimal(answer["account"]["Balance"]) == Decimal(1_000_000)
    assert sim.control("GET", "/sim/users/999999999")["retcode"].startswith("13")


def test_the_ambient_rate_comes_from_the_option_else_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(AMBIENT_ENV, raising=False)
    assert parse_args([]).ambient_deals_per_second == 0
    monkeypatch.setenv(AMBIENT_ENV, "0.5")
    assert parse_args([]).ambient_deals_per_second == 0.5
    assert parse_args(["--ambient-deals-per-second", "0"]).ambient_deals_per_second == 0
    for bad in ("fast", "nan", "-1"):
        monkeypatch.setenv(AMBIENT_ENV, bad)
        with pytest.raises(SystemExit):
            parse_args([])
