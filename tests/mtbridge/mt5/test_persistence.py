"""The simulator's state survives restarts: users, balances, deals, positions, tickets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import BalanceType, Mt5Client
from tests.mtbridge.mt5.conftest import new_user


async def test_state_persists_across_a_graceful_restart(fresh_sim: Mt5SimProcess) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with Mt5Client(fresh_sim.url, fresh_sim.manager_login, fresh_sim.manager_password) as mt5:
        user = await new_user(mt5)
        await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal("5000.00"), "dep")
        await mt5.trade_balance(user.login, BalanceType.CREDIT, Decimal("100.00"), "bonus")
        fresh_sim.control("POST", "/sim/deals", {"login": user.login, "count": 25})
        before_deals = await mt5.get_deals(
            logins=[user.login], since=since, until=datetime.now(UTC) + timedelta(seconds=1)
        )
        before_positions = await mt5.get_positions(logins=[user.login])
        before_state = fresh_sim.control("GET", "/sim/state")
        before_account = await mt5.get_account(user.login)

        fresh_sim.restart()  # SIGTERM: saved on the way out, reloaded on start

        assert await mt5.get_user(user.login) == user
        after_account = await mt5.get_account(user.login)
        assert after_account.balance == before_account.balance
        assert after_account.balance == sum(
            (d.profit + d.commission + d.swap for d in before_deals if d.action != 3),
            Decimal(0),
        )
        assert after_account.credit == Decimal(100)
        after_deals = await mt5.get_deals(
            logins=[user.login], since=since, until=datetime.now(UTC) + timedelta(seconds=1)
        )
        assert after_deals == before_deals
        assert [p.position_id for p in await mt5.get_positions(logins=[user.login])] == [
            p.position_id for p in before_positions
        ]
        after_state = fresh_sim.control("GET", "/sim/state")
        for key in ("users", "deals", "positions", "next_ticket", "next_login"):
            assert after_state[key] == before_state[key]

        # counters continue: no ticket or login is handed out twice
        ticket = await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(1), "more")
        assert ticket == before_state["next_ticket"]
        assert (await new_user(mt5)).login == before_state["next_login"]


async def test_periodic_saves_survive_a_kill(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with Mt5SimProcess(state_file, save_interval=0.2, log_file=tmp_path / "sim.log") as sim:
        async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
            user = await new_user(mt5)
            await mt5.trade_balance(user.login, BalanceType.BALANCE, Decimal(42), "dep")
            sim.control("POST", "/sim/save")
            sim.kill()  # no graceful shutdown: the explicit/periodic save is what survives
            sim.start()
            assert (await mt5.get_account(user.login)).balance == Decimal(42)
    saved = json.loads(state_file.read_text())
    assert saved["version"] == 1
    assert any(u["login"] == user.login for u in saved["users"])
    assert not any("Trader-Pass1" in json.dumps(u) for u in saved["users"])  # hashes only
