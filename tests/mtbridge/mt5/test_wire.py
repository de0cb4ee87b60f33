"""Unit tests of wire conversions and record parsing (exact decimals, volumes, times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pipworks_mtbridge.mt5 import (
    DealAction,
    DealEntry,
    Mt5Account,
    Mt5Deal,
    Mt5Error,
    Mt5Group,
    Mt5Position,
    Mt5User,
    UserRights,
    lots_from_volume,
    lots_from_volume_ext,
    lots_to_volume,
    lots_to_volume_ext,
)
from pipworks_mtbridge.mt5.wire import (
    from_msc,
    from_seconds,
    lots_of,
    to_decimal,
    to_int,
    to_wire_decimal,
    to_wire_seconds,
)


@pytest.mark.parametrize(
    ("volume", "lots"),
    [(10_000, "1"), (15_000, "1.5"), (100, "0.01"), (1, "0.0001"), (0, "0"), (1_000_000, "100")],
)
def test_volume_is_ten_thousandths_of_a_lot(volume: int, lots: str) -> None:
    assert lots_from_volume(volume) == Decimal(lots)
    assert format(lots_from_volume(volume), "f") == lots
    assert lots_to_volume(Decimal(lots)) == volume


@pytest.mark.parametrize(
    ("volume_ext", "lots"),
    [
        (100_000_000, "1"),
        (150_000_000, "1.5"),
        (1_000_000, "0.01"),
        (1, "0.00000001"),
        (123_456_789, "1.23456789"),
        (10_000_000_000, "100"),
    ],
)
def test_volume_ext_is_hundred_millionths_of_a_lot(volume_ext: int, lots: str) -> None:
    assert lots_from_volume_ext(volume_ext) == Decimal(lots)
    assert format(lots_from_volume_ext(volume_ext), "f") == lots
    assert lots_to_volume_ext(Decimal(lots)) == volume_ext


def test_lots_finer_than_the_unit_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number"):
        lots_to_volume(Decimal("0.00001"))
    with pytest.raises(ValueError, match="whole number"):
        lots_to_volume_ext(Decimal("0.000000001"))


def test_volume_ext_is_preferred_over_volume() -> None:
    # Volume truncates 0.00123456 lot to 12 units; VolumeExt keeps it exactly.
    assert lots_of({"Volume": "12", "VolumeExt": "123456"}) == Decimal("0.00123456")
    assert lots_of({"Volume": "15000"}) == Decimal("1.5")
    assert lots_of({"Volume": "15000", "VolumeExt": "0"}) == Decimal("1.5")
    assert lots_of({"Volume": "0", "VolumeExt": "0"}) == 0


def test_decimals_are_exact_and_floats_refused() -> None:
    assert to_decimal("0.1") + to_decimal("0.2") == Decimal("0.3")
    assert to_decimal(" -1234.56 ") == Decimal("-1234.56")
    for bad in (0.1, None, True, "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="expected"):
            to_decimal(bad)
    assert to_wire_decimal(Decimal("1E+3")) == "1000"
    assert to_wire_decimal(Decimal("-0.50")) == "-0.50"


def test_ints() -> None:
    assert to_int("500123") == 500123
    assert to_int(7) == 7
    assert to_int("-5") == -5
    for bad in ("1.5", "", None, True, "12a"):
        with pytest.raises(ValueError, match="expected"):
            to_int(bad)


def test_times_are_utc_and_exact_to_the_millisecond() -> None:
    assert from_seconds("0") == datetime(1970, 1, 1, tzinfo=UTC)
    moment = from_msc("1700000000123")
    assert moment == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert to_wire_seconds(moment) == 1_700_000_000
    assert to_wire_seconds(moment, round_up=True) == 1_700_000_001
    assert to_wire_seconds(from_seconds("1700000000"), round_up=True) == 1_700_000_000
    plus_two = timezone(timedelta(hours=2))
    assert to_wire_seconds(datetime(1970, 1, 1, 2, tzinfo=plus_two)) == 0
    with pytest.raises(ValueError, match="naive"):
        to_wire_seconds(datetime(2024, 1, 1))


def test_deal_record() -> None:
    deal = Mt5Deal.from_wire(
        {
            "Deal": "1001",
            "Login": "500000",
            "Action": "1",
            "Entry": "1",
            "Symbol": "EURUSD",
            "Volume": "15000",
            "VolumeExt": "150000000",
            "Price": "1.08512",
            "Profit": "-12.34",
            "Commission": "-3.50",
            "Storage": "-0.41",
            "Time": "1700000000",
            "TimeMsc": "1700000000123",
            "PositionID": "999",
            "Comment": "[sl 1.08512]",
            "ContractSize": "100000",
        }
    )
    assert deal.ticket == 1001
    assert deal.action == DealAction.SELL
    assert deal.entry == DealEntry.OUT
    assert deal.volume_lots == Decimal("1.5")
    assert deal.price == Decimal("1.08512")
    assert deal.profit == Decimal("-12.34")
    assert deal.swap == Decimal("-0.41")
    assert deal.time.microsecond == 123000
    assert deal.position_id == 999
    assert deal.contract_size == Decimal(100000)


def test_balance_deal_and_unknown_action() -> None:
    deal = Mt5Deal.from_wire(
        {"Deal": "5", "Login": "7", "Action": "2", "Profit": "100.00", "Time": "10"}
    )
    assert deal.action == DealAction.BALANCE
    assert deal.volume_lots == 0
    assert deal.contract_size is None
    assert Mt5Deal.from_wire({"Deal": "6", "Login": "7", "Action": "42", "Time": "1"}).action == 42


def test_malformed_records_raise_mt5_error() -> None:
    with pytest.raises(Mt5Error, match="Login"):
        Mt5User.from_wire({"Group": "g"})
    with pytest.raises(Mt5Error, match="Balance"):
        Mt5Account.from_wire({"Login": "1", "Balance": 1.5, "Equity": "1", "MarginFree": "1"})
    with pytest.raises(Mt5Error, match="JSON object"):
        Mt5Group.from_wire([])


def test_user_position_group_records() -> None:
    user = Mt5User.from_wire(
        {
            "Login": "500000",
            "Group": "real\\standard",
            "Name": "A",
            "Email": "a@example.com",
            "Leverage": "100",
            "Rights": str(0x4 | 0x1 | 0x1_0000_0000),
            "Registration": "1700000000",
        }
    )
    assert UserRights.TRADE_DISABLED in user.rights
    assert not user.trading_enabled
    assert not user.withdrawals_enabled
    position = Mt5Position.from_wire(
        {
            "Position": "9",
            "Login": "1",
            "Symbol": "XAUUSD",
            "Action": "0",
            "VolumeExt": "1000000",
            "PriceOpen": "2350.10",
            "PriceCurrent": "2351.10",
            "Profit": "1.00",
            "TimeCreate": "1700000000",
        }
    )
    assert position.volume_lots == Decimal("0.01")
    group = Mt5Group.from_wire({"Group": "g", "Currency": "USD", "CurrencyDigits": "2"})
    assert (group.leverage_min, group.leverage_max) == (1, 1000)
