"""Unit tests of the simulator's state (in process): account maths, stop-out, indexes."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest

from pipworks_mtbridge.mt5sim.activity import generate_deal
from pipworks_mtbridge.mt5sim.model import BALANCE, BUY, CREDIT, SELL, SimError
from pipworks_mtbridge.mt5sim.pricing import PriceFeed
from pipworks_mtbridge.mt5sim.state import SimState, group_matcher


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def make_state(clock: Clock | None = None) -> SimState:
    rng = random.Random(7)
    return SimState(PriceFeed(rng), rng, clock_ms=clock)


def add(state: SimState, group: str = "real\\standard", leverage: int = 100) -> int:
    return state.add_user(
        group=group,
        name="T",
        email="",
        leverage=leverage,
        password_main="Abcdefg1",
        password_investor="Abcdefg1",
    ).login


def test_account_maths_with_a_position() -> None:
    state = make_state()
    login = add(state)
    state.balance_operation(login, BALANCE, Decimal(2000), "dep", check_margin=True)
    state.balance_operation(login, CREDIT, Decimal(100), "bonus", check_margin=True)
    state.feed.set_bid("EURUSD", Decimal("1.10000"))
    state.open_position(login, "EURUSD", BUY, 100_000_000)  # 1 lot at the ask 1.10010
    state.feed.set_bid("EURUSD", Decimal("1.10110"))
    account = state.account(state.user(login))
    assert account.profit == Decimal("100.00")  # (1.10110 - 1.10010) x 100,000
    assert account.equity == Decimal("2200.00")  # balance + credit + floating
    # margin: 100,000 EUR / 100 = 1,000 EUR at the EURUSD mid (1.10115) in USD
    assert account.margin == Decimal("1101.15")
    assert account.margin_free == account.equity - account.margin
    assert account.margin_level == Decimal("199.79")  # 2200 / 1101.15 x 100


def test_stop_out_closes_the_worst_position() -> None:
    state = make_state()
    login = add(state)
    state.balance_operation(login, BALANCE, Decimal(1200), "dep", check_margin=True)
    state.feed.set_bid("EURUSD", Decimal("1.10000"))
    state.open_position(login, "EURUSD", BUY, 100_000_000)
    state.feed.set_bid("EURUSD", Decimal("1.09500"))  # -510 USD: level ≈ 62%
    assert state.enforce_stop_out() == []
    state.feed.set_bid("EURUSD", Decimal("1.09000"))  # -1010 USD: level ≈ 17% < 50%
    (deal,) = state.enforce_stop_out()
    assert deal.comment.startswith("[so ")
    assert deal.profit == Decimal("-1010.00")
    assert state.positions_by_login.get(login) is None
    assert state.user(login).balance == Decimal("190.00")


def test_balance_rules() -> None:
    state = make_state()
    login = add(state)
    with pytest.raises(SimError) as caught:
        state.balance_operation(login, BALANCE, Decimal(-1), "wd", check_margin=True)
    assert caught.value.retcode == 10019
    # without the margin check, MT5 lets a balance go negative
    state.balance_operation(login, BALANCE, Decimal(-1), "fix", check_margin=False)
    assert state.user(login).balance == -1
    for amount in (Decimal("0.001"), Decimal(0)):
        with pytest.raises(SimError) as caught:
            state.balance_operation(login, BALANCE, amount, "x", check_margin=True)
        assert caught.value.retcode == 3
    with pytest.raises(SimError) as caught:
        state.balance_operation(login, 6, Decimal(1), "x", check_margin=True)
    assert caught.value.retcode == 3


def test_trade_disabled_login_gets_no_generated_deals() -> None:
    state = make_state()
    login = add(state)
    state.balance_operation(login, BALANCE, Decimal(10_000), "dep", check_margin=True)
    assert generate_deal(state, login, ["EURUSD"], 0.5) is not None
    state.update_user(login, rights=state.user(login).rights | 0x4)
    assert generate_deal(state, login, ["EURUSD"], 0.5) is None
    with pytest.raises(SimError) as caught:
        state.open_position(login, "EURUSD", SELL, 1_000_000)
    assert caught.value.retcode == 10017


def test_group_masks() -> None:
    matches = group_matcher("real\\*,!real\\pro")
    assert matches("real\\standard")
    assert matches("REAL\\Standard")
    assert not matches("real\\pro")
    assert not matches("demo\\standard")
    assert group_matcher("*")("anything")
    with pytest.raises(SimError):
        group_matcher("!real\\*")


def test_time_range_queries_use_the_index_on_large_stores() -> None:
    clock = Clock()
    state = make_state(clock)
    logins = [add(state, leverage=500) for _ in range(20)]
    for login in logins:
        state.balance_operation(login, BALANCE, Decimal(10_000_000), "dep", check_margin=True)
    for i in range(30_000):
        clock.ms += 1 + i % 3
        generate_deal(state, logins[i % len(logins)], ["EURUSD", "US30"], 0.5)
    total = len(state.deals)
    assert total > 30_000
    assert [d.deal for d in state.deals] == sorted(d.deal for d in state.deals)

    middle = state.deals[total // 2].time_msc
    window = (middle, middle + 200)
    began = time.perf_counter()
    for _ in range(200):
        by_login = state.deals_between(*window, [logins[3]], None)
        by_group = state.deals_between(*window, None, "real\\*")
    per_query = (time.perf_counter() - began) / 400
    assert per_query < 0.002  # a scan of 30k deals would take far longer

    expected = [d for d in state.deals if window[0] <= d.time_msc <= window[1]]
    assert by_group == expected
    assert by_login == [d for d in expected if d.login == logins[3]]


def test_clock_going_backwards_keeps_deal_times_ordered() -> None:
    clock = Clock()
    state = make_state(clock)
    login = add(state)
    state.balance_operation(login, BALANCE, Decimal(1), "a", check_margin=True)
    clock.ms -= 10_000
    deal = state.balance_operation(login, BALANCE, Decimal(1), "b", check_margin=True)
    assert deal.time_msc == state.deals[0].time_msc
