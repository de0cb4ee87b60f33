"""Deal history and positions over a time range, by logins and by group mask."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import BalanceType, DealAction, DealEntry, Mt5Client, Mt5InvalidParams
from tests.mtbridge.mt5.conftest import new_user


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=2)


async def _funded(mt5: Mt5Client, group: str = "real\\standard") -> int:
    user = await new_user(mt5, group=group)
    await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(100_000), "dep")
    return user.login


async def test_deals_by_login_and_by_group(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        start = datetime.now(UTC) - timedelta(seconds=1)
        a, b = await _funded(mt5), await _funded(mt5)
        pro = await _funded(mt5, "real\\pro")
        for login in (a, b, pro):
            fresh_sim.control("POST", "/sim/deals", {"login": login, "count": 40})

        only_a = await mt5.get_deals(logins=[a], since=start, until=_later())
        assert len(only_a) == 41  # the deposit and 40 trades
        assert {d.login for d in only_a} == {a}
        assert [d.ticket for d in only_a] == sorted(d.ticket for d in only_a)
        trades = [d for d in only_a if d.action in (DealAction.BUY, DealAction.SELL)]
        assert all(d.volume_lots > 0 and d.price > 0 and d.symbol for d in trades)
        opened = {d.position_id for d in trades if d.entry == DealEntry.IN}
        closed = [d for d in trades if d.entry == DealEntry.OUT]
        assert all(d.position_id in opened for d in closed)

        standard = await mt5.get_deals(group="real\\standard", since=start, until=_later())
        assert {d.login for d in standard} == {a, b}
        assert len(standard) == 82
        everything = await mt5.get_deals(group="real\\*", since=start, until=_later())
        assert len(everything) == 123
        excluded = await mt5.get_deals(group="real\\*,!real\\pro", since=start, until=_later())
        assert {d.login for d in excluded} == {a, b}

        # real\pro charges commission on every trade deal
        pro_deals = await mt5.get_deals(logins=[pro], since=start, until=_later())
        assert all(d.commission < 0 for d in pro_deals if d.symbol)

        # balance reflects realised profit and commission of every deal
        account = await mt5.get_account(pro)
        realised = sum((d.profit + d.commission + d.swap for d in pro_deals), Decimal(0))
        assert account.balance == realised


async def test_deal_time_range_is_exact(sim: Mt5SimProcess, client: Mt5Client) -> None:
    login = await _funded(client)
    await asyncio.sleep(0.05)
    first = await client.trade_balance(login, BalanceType.BALANCE, Decimal(1), "first")
    await asyncio.sleep(1.1)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)  # deal times are whole milliseconds: keep them apart
    second = await client.trade_balance(login, BalanceType.BALANCE, Decimal(2), "second")
    all_deals = await client.get_deals(
        logins=[login], since=middle - timedelta(minutes=5), until=_later()
    )
    by_ticket = {d.ticket: d for d in all_deals}
    assert {first, second} <= set(by_ticket)

    after = await client.get_deals(logins=[login], since=middle, until=_later())
    assert [d.ticket for d in after] == [second]
    before = await client.get_deals(
        logins=[login], since=middle - timedelta(minutes=5), until=middle
    )
    assert second not in {d.ticket for d in before}
    assert first in {d.ticket for d in before}
    exactly = by_ticket[second].time
    assert [
        d.ticket for d in await client.get_deals(logins=[login], since=exactly, until=exactly)
    ] == [second]


async def test_deal_queries_need_a_selector_and_a_sane_range(client: Mt5Client) -> None:
    now = datetime.now(UTC)
    with pytest.raises(Mt5InvalidParams):
        await client.get_deals(since=now, until=now)
    with pytest.raises(Mt5InvalidParams):
        await client.get_deals(logins=[1], group="real\\*", since=now, until=now)
    with pytest.raises(Mt5InvalidParams):
        await client.get_deals(logins=[1], since=now, until=now - timedelta(seconds=1))
    assert await client.get_deals(logins=[999_999_990], since=now, until=now) == []


async def test_positions_by_login_and_group(fresh_sim: Mt5SimProcess) -> None:
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        a, b = await _funded(mt5), await _funded(mt5, "real\\pro")
        for login, symbol, side, volume in (
            (a, "EURUSD", "buy", "0.10"),
            (a, "XAUUSD", "sell", "0.01"),
            (b, "BTCUSD", "buy", "0.5"),
        ):
            fresh_sim.control(
                "POST",
                "/sim/positions",
                {"login": login, "symbol": symbol, "action": side, "volume": volume},
            )
        mine = await mt5.get_positions(logins=[a])
        assert [(p.symbol, p.action, p.volume_lots) for p in mine] == [
            ("EURUSD", 0, Decimal("0.1")),
            ("XAUUSD", 1, Decimal("0.01")),
        ]
        eur = mine[0]
        assert eur.price_open > 0
        assert eur.price_current > 0
        # 0.1 lot x 100,000 EUR: profit in USD is the price move x 10,000
        expected = ((eur.price_current - eur.price_open) * 10_000).quantize(Decimal("0.01"))
        assert eur.profit == expected
        pro = await mt5.get_positions(group="real\\pro")
        assert [(p.login, p.symbol) for p in pro] == [(b, "BTCUSD")]

        fresh_sim.control("POST", f"/sim/positions/{eur.position_id}/close")
        assert [p.symbol for p in await mt5.get_positions(logins=[a])] == ["XAUUSD"]
        deals = await mt5.get_deals(
            logins=[a], since=datetime.now(UTC) - timedelta(minutes=1), until=_later()
        )
        close = deals[-1]
        assert (close.entry, close.position_id, close.action) == (DealEntry.OUT, eur.position_id, 1)
