"""Market activity generation on the simulator: rate, chosen logins, disabled trading."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import BalanceType, DealEntry, Mt5Client, UserRights
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
