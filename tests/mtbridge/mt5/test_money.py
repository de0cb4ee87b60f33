"""Balance and credit operations, accounts and their margin figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import (
    BalanceType,
    DealAction,
    Mt5Client,
    Mt5InvalidParams,
    Mt5NotEnoughMoney,
    Mt5NotFound,
    Mt5PermissionDenied,
    UserRights,
)
from tests.mtbridge.mt5.conftest import new_user


async def test_deposit_withdraw_and_credit(client: Mt5Client) -> None:
    user = await new_user(client)
    empty = await client.get_account(user.login)
    assert (empty.balance, empty.credit, empty.equity, empty.margin) == (0, 0, 0, 0)
    assert empty.margin_level == 0

    deposit = await client.trade_balance(
        user.login, BalanceType.BALANCE, Decimal("1000.50"), "dep#1"
    )
    withdrawal = await client.trade_balance(
        user.login, BalanceType.BALANCE, Decimal("-200.25"), "wd#1"
    )
    credit = await client.trade_balance(user.login, BalanceType.CREDIT, Decimal("50"), "bonus")
    assert deposit < withdrawal < credit

    account = await client.get_account(user.login)
    assert account.balance == Decimal("800.25")
    assert account.credit == Decimal(50)
    assert account.equity == Decimal("850.25")
    assert account.margin_free == Decimal("850.25")

    await client.trade_balance(user.login, BalanceType.CREDIT, Decimal(-50), "bonus out")
    assert (await client.get_account(user.login)).credit == 0


async def test_balance_operations_are_recorded_as_deals(client: Mt5Client) -> None:
    from datetime import UTC, datetime, timedelta

    user = await new_user(client)
    start = datetime.now(UTC) - timedelta(seconds=1)
    dep = await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(100), "dep:abc")
    cre = await client.trade_balance(user.login, BalanceType.CREDIT, Decimal(25), "cr:abc")
    deals = await client.get_deals(
        logins=[user.login], since=start, until=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert [(d.ticket, d.action, d.profit, d.comment) for d in deals] == [
        (dep, DealAction.BALANCE, Decimal(100), "dep:abc"),
        (cre, DealAction.CREDIT, Decimal(25), "cr:abc"),
    ]


async def test_withdrawal_beyond_free_margin_is_not_enough_money(client: Mt5Client) -> None:
    user = await new_user(client)
    await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(100), "dep")
    with pytest.raises(Mt5NotEnoughMoney) as caught:
        await client.trade_balance(user.login, BalanceType.BALANCE, Decimal("-100.01"), "wd")
    assert caught.value.retcode == 10019
    with pytest.raises(Mt5NotEnoughMoney):
        await client.trade_balance(user.login, BalanceType.CREDIT, Decimal(-1), "no credit")
    assert (await client.get_account(user.login)).balance == Decimal(100)  # nothing moved


async def test_withdrawal_blocked_by_rights(client: Mt5Client) -> None:
    user = await new_user(client)
    await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(100), "dep")
    await client.update_user(user.login, rights=user.rights | UserRights.WITHDRAWAL_DISABLED)
    with pytest.raises(Mt5PermissionDenied) as caught:
        await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(-10), "wd")
    assert caught.value.retcode == 8
    await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(10), "deposits still ok")
    await client.update_user(user.login, rights=user.rights)
    await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(-10), "wd")
    assert (await client.get_account(user.login)).balance == Decimal(100)


@pytest.mark.parametrize(
    ("amount", "comment"),
    [
        (Decimal("1.001"), "too many decimals for USD"),
        (Decimal(0), "zero"),
        (Decimal("NaN"), "nan"),
        (Decimal(1), "x" * 33),
    ],
)
async def test_bad_amounts_and_comments_are_invalid(
    client: Mt5Client, amount: Decimal, comment: str
) -> None:
    user = await new_user(client)
    with pytest.raises(Mt5InvalidParams):
        await client.trade_balance(user.login, BalanceType.BALANCE, amount, comment)
    assert (await client.get_account(user.login)).balance == 0


async def test_balance_to_an_unknown_login_is_not_found(client: Mt5Client) -> None:
    with pytest.raises(Mt5NotFound):
        await client.trade_balance(999_999_998, BalanceType.BALANCE, Decimal(1), "dep")


async def test_margin_figures_follow_open_positions(sim: Mt5SimProcess, client: Mt5Client) -> None:
    user = await new_user(client)  # leverage 100
    await client.trade_balance(user.login, BalanceType.BALANCE, Decimal(10_000), "dep")
    sim.control(
        "POST",
        "/sim/positions",
        {"login": user.login, "symbol": "US30", "action": "buy", "volume": "1"},
    )
    account = await client.get_account(user.login)
    positions = await client.get_positions(logins=[user.login])
    assert len(positions) == 1
    # US30: 1 lot x contract 1 x price / leverage 100 ≈ 390 USD of margin
    assert Decimal(300) < account.margin < Decimal(500)
    assert account.equity == account.balance + account.credit + positions[0].profit
    assert account.margin_free == account.equity - account.margin
    expected_level = (account.equity / account.margin * 100).quantize(Decimal("0.01"))
    assert abs(account.margin_level - expected_level) <= Decimal("0.01")

    accounts = await client.get_accounts([user.login, 999_999_997])
    assert [a.login for a in accounts] == [user.login]
    assert await client.get_accounts([]) == []
