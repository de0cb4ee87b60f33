"""Users and groups through the client against the simulator, including bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipworks_mtbridge.mt5 import (
    Mt5AlreadyExists,
    Mt5Client,
    Mt5InvalidParams,
    Mt5NotFound,
    Mt5WeakPassword,
    UserRights,
)
from tests.mtbridge.mt5.conftest import GROUP, INVESTOR_PASSWORD, TRADER_PASSWORD, new_user


async def test_add_get_update_user(client: Mt5Client) -> None:
    user = await client.add_user(
        group=GROUP,
        name="Ada Lovelace",
        email="ada@example.com",
        leverage=100,
        password_main=TRADER_PASSWORD,
        password_investor=INVESTOR_PASSWORD,
    )
    assert user.login >= 500_000
    assert user.group == GROUP
    assert user.leverage == 100
    assert UserRights.ENABLED in user.rights
    assert user.trading_enabled
    assert user.withdrawals_enabled
    assert abs(user.registration - datetime.now(UTC)) < timedelta(minutes=1)

    assert await client.get_user(user.login) == user

    updated = await client.update_user(
        user.login, leverage=200, rights=user.rights | UserRights.TRADE_DISABLED
    )
    assert updated.leverage == 200
    assert not updated.trading_enabled
    assert await client.get_user(user.login) == updated

    moved = await client.update_user(user.login, group="demo\\standard", leverage=1000)
    assert (moved.group, moved.leverage) == ("demo\\standard", 1000)


async def test_add_user_with_a_chosen_login_and_duplicate(client: Mt5Client) -> None:
    first = await new_user(client)
    login = first.login + 100_000
    created = await client.add_user(
        group=GROUP,
        name="Chosen",
        email="c@example.com",
        leverage=50,
        password_main=TRADER_PASSWORD,
        password_investor=INVESTOR_PASSWORD,
        login=login,
        rights=int(UserRights.ENABLED),
    )
    assert created.login == login
    assert created.rights == UserRights.ENABLED
    with pytest.raises(Mt5AlreadyExists) as caught:
        await client.add_user(
            group=GROUP,
            name="Again",
            email="c@example.com",
            leverage=50,
            password_main=TRADER_PASSWORD,
            password_investor=INVESTOR_PASSWORD,
            login=login,
        )
    assert caught.value.retcode == 3004


@pytest.mark.parametrize(
    "password", ["Short1a", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", ""]
)
async def test_weak_passwords_are_refused(client: Mt5Client, password: str) -> None:
    with pytest.raises(Mt5WeakPassword) as caught:
        await client.add_user(
            group=GROUP,
            name="Weak",
            email="w@example.com",
            leverage=100,
            password_main=password,
            password_investor=INVESTOR_PASSWORD,
        )
    assert caught.value.retcode == 3006


@pytest.mark.parametrize(
    ("group", "leverage", "name"),
    [
        ("real\\nonexistent", 100, "X"),  # unknown group
        (GROUP, 0, "X"),  # leverage below the group's range
        (GROUP, 501, "X"),  # above it (1..500)
        (GROUP, 100, "   "),  # blank name
    ],
)
async def test_bad_user_params_are_refused(
    client: Mt5Client, group: str, leverage: int, name: str
) -> None:
    with pytest.raises(Mt5InvalidParams) as caught:
        await client.add_user(
            group=group,
            name=name,
            email="b@example.com",
            leverage=leverage,
            password_main=TRADER_PASSWORD,
            password_investor=INVESTOR_PASSWORD,
        )
    assert caught.value.retcode == 3


async def test_update_out_of_range_leverage_and_unknown_group(client: Mt5Client) -> None:
    user = await new_user(client)
    with pytest.raises(Mt5InvalidParams):
        await client.update_user(user.login, leverage=1000)
    with pytest.raises(Mt5InvalidParams):
        await client.update_user(user.login, group="nope\\nope")
    assert (await client.get_user(user.login)).leverage == user.leverage  # nothing changed


async def test_unknown_login_is_not_found(client: Mt5Client) -> None:
    for call in (
        client.get_user(999_999_999),
        client.update_user(999_999_999, leverage=10),
        client.get_account(999_999_999),
    ):
        with pytest.raises(Mt5NotFound) as caught:
            await call
        assert caught.value.retcode == 13


async def test_invalid_logins_are_refused_before_sending(client: Mt5Client) -> None:
    with pytest.raises(Mt5InvalidParams):
        await client.get_user(0)
    with pytest.raises(Mt5InvalidParams):
        await client.get_user(True)


async def test_group_get(client: Mt5Client) -> None:
    group = await client.get_group("real\\standard")
    assert group.name == "real\\standard"
    assert group.currency == "USD"
    assert group.currency_digits == 2
    assert (group.leverage_min, group.leverage_max) == (1, 500)
    assert group.margin_call == 100
    assert group.stop_out == 50
    demo = await client.get_group("demo\\standard")
    assert demo.leverage_max == 1000
    with pytest.raises(Mt5NotFound):
        await client.get_group("real\\missing")
