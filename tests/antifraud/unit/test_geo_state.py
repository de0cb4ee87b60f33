"""Geolocation from the IP-range CSV, distances, and the state's bounded windows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipworks_antifraud.domain.geo import (
    GeoDataError,
    IpRangeTable,
    Location,
    haversine_km,
    travel_speed_kmh,
)
from pipworks_antifraud.domain.state import (
    MAX_BUCKETS,
    ClientState,
    Series,
    bucket_width,
    robust_z,
)
from pipworks_antifraud.settings import SAMPLE_GEOIP_CSV


def test_the_sample_file_resolves_v4_and_v6() -> None:
    table = IpRangeTable.from_csv_lines(SAMPLE_GEOIP_CSV.read_text().splitlines())
    london = table.locate("192.0.2.17")
    assert london is not None
    assert london.country == "GB"
    assert table.locate("2001:db8:1::5") is not None
    assert table.locate("2001:db8:1::5").country == "JP"  # type: ignore[union-attr]
    assert table.locate("8.8.8.8") is None
    assert table.locate("not-an-ip") is None


def test_a_bad_row_names_its_line() -> None:
    with pytest.raises(GeoDataError, match="line 2"):
        IpRangeTable.from_csv_lines(["1.2.3.0/24,GB,1,2", "999.0.0.0/8,XX,1,2"])


def test_london_to_sydney_is_about_17000_km() -> None:
    distance = haversine_km(Location("GB", 51.5074, -0.1278), Location("AU", -33.8688, 151.2093))
    assert 16_900 < distance < 17_100
    assert travel_speed_kmh(1000, 3600) == pytest.approx(1000)
    assert travel_speed_kmh(1000, 0) == pytest.approx(60_000)  # a minute at least


def test_windows_stay_bounded_and_expire() -> None:
    for window in (60, 600, 86400, 7 * 86400, 30 * 86400, 180 * 86400):
        assert window / bucket_width(window) <= MAX_BUCKETS + 1
    series = Series(bucket_width(3600))
    start = 1_700_000_000.0
    for minute in range(0, 24 * 60, 5):
        series.add(start + minute * 60, Decimal(1))
        series.prune(start + minute * 60, 3600)
    now = start + 24 * 60 * 60
    count, total = series.totals(now - 300, 3600)
    assert 12 <= count <= 13
    assert total == count
    assert len(series.buckets) <= 3600 // series.width + 2


def test_state_round_trips_through_its_document() -> None:
    state = ClientState("u")
    state.first_seen = 10.0
    state.add_day(86400 * 3, volume=Decimal("1.5"), trades=2)
    state.remember_country("GB")
    state.open_position("p1", 5.0)
    state.series["deposit|@900"] = Series(900, {900: [2, Decimal("12.5")]})
    copy = ClientState.from_document("u", 4, state.to_document())
    assert copy.to_document() == state.to_document()
    assert copy.version == 4


def test_robust_z_reacts_to_an_outlier_not_to_noise() -> None:
    history = [Decimal(v) for v in (10, 12, 9, 11, 10, 13, 10, 9)]
    assert robust_z(Decimal(11), history) < 2
    assert robust_z(Decimal(60), history) > 10
