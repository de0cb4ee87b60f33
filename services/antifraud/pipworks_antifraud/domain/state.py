"""Per-client streaming state: time-bucketed windows, daily totals, geography, positions.

Windows are kept as sparse buckets whose width grows with the window (a 10-minute window
counts in 1-minute buckets, 24 hours in 15-minute buckets, 30 days in 6-hour buckets), so a
series never holds more than :data:`MAX_BUCKETS` buckets and expiring one is O(buckets).
Window edges have the resolution of the bucket width. The state serialises to a compact
JSON document that the service stores with each event's effects, so a restart resumes
with exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MAX_BUCKETS = 192
BUCKET_WIDTHS = (60, 300, 900, 3600, 21600, 86400)
MAX_DISTINCT_PER_BUCKET = 64
MAX_COUNTRIES = 64
MAX_OPEN_POSITIONS = 512
DAY = 86400
ZERO = Decimal(0)
STATE_FORMAT = 1


def bucket_width(window_seconds: int) -> int:
    for width in BUCKET_WIDTHS:
        if window_seconds / width <= MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS[-1]


@dataclass
class Series:
    """Count and sum per bucket (bucket start in epoch seconds -> [count, sum])."""

    width: int
    buckets: dict[int, list[Any]] = field(default_factory=dict)

    def add(self, at: float, value: Decimal) -> None:
        start = int(at // self.width) * self.width
        slot = self.buckets.get(start)
        if slot is None:
            self.buckets[start] = [1, value]
        else:
            slot[0] += 1
            slot[1] += value

    def totals(self, now: float, window: int) -> tuple[int, Decimal]:
        low = now - window - self.width
        count, total = 0, ZERO
        for start, (n, s) in self.buckets.items():
            if low < start <= now:
                count += n
                total += s
        return count, total

    def prune(self, now: float, retention: int) -> None:
        horizon = now - retention - self.width
        expired = [start for start in self.buckets if start <= horizon]
        for start in expired:
            del self.buckets[start]


@dataclass
class DistinctSeries:
    """Distinct values per bucket (bucket start -> values), bounded per bucket."""

    width: int
    buckets: dict[int, set[str]] = field(default_factory=dict)

    def add(self, at: float, value: str) -> None:
        if not value:
            return
        start = int(at // self.width) * self.width
        values = self.buckets.setdefault(start, set())
        if len(values) < MAX_DISTINCT_PER_BUCKET:
            values.add(value)

    def distinct(self, now: float, window: int) -> int:
        low = now - window - self.width
        seen: set[str] = set()
        for start, values in self.buckets.items():
            if low < start <= now:
                seen |= values
        return len(seen)

    def prune(self, now: float, retention: int) -> None:
        horizon = now - retention - self.width
        for start in [s for s in self.buckets if s <= horizon]:
            del self.buckets[start]


@dataclass
class DayTotals:
    volume: Decimal = ZERO
    deposits: Decimal = ZERO
    trades: int = 0

    def metric(self, name: str) -> Decimal:
        if name == "volume":
            return self.volume
        if name == "deposits":
            return self.deposits
        return Decimal(self.trades)


@dataclass
class LastLogin:
    at: float
    country: str
    latitude: float
    longitude: float


@dataclass
class ClientState:
    """Everything the engine remembers about one client."""

    user_id: str
    version: int = 0
    first_seen: float | None = None
    series: dict[str, Series] = field(default_factory=dict)
    distinct: dict[str, DistinctSeries] = field(default_factory=dict)
    days: dict[int, DayTotals] = field(default_factory=dict)
    last_login: LastLogin | None = None
    countries: list[str] = field(default_factory=list)
    positions: dict[str, float] = field(default_factory=dict)
    kyc_country: str = ""
    registered_country: str = ""
    risk_rating: str = ""
    accounts: int = 0
    fired: dict[str, float] = field(default_factory=dict)  # rule id -> last time it fired

    # -- daily baseline -----------------------------------------------------------------

    def add_day(
        self, at: float, *, volume: Decimal = ZERO, deposits: Decimal = ZERO, trades: int = 0
    ) -> None:
        totals = self.days.setdefault(int(at // DAY), DayTotals())
        totals.volume += volume
        totals.deposits += deposits
        totals.trades += trades

    def prune_days(self, now: float, keep_days: int) -> None:
        oldest = int(now // DAY) - keep_days
        for day in [d for d in self.days if d < oldest]:
            del self.days[day]

    def day_history(self, now: float, metric: str, days: int) -> tuple[Decimal, list[Decimal]]:
        """Today's total and the totals of the previous ``days`` days since first seen."""
        today = int(now // DAY)
        first = int((self.first_seen if self.first_seen is not None else now) // DAY)
        current = self.days.get(today)
        history = [
            (self.days[d].metric(metric) if d in self.days else ZERO)
            for d in range(max(first, today - days), today)
        ]
        return (current.metric(metric) if current else ZERO), history

    # -- geography and positions -------------------------------------------------------

    def remember_country(self, country: str) -> None:
        if country and country not in self.countries:
            self.countries.append(country)
            del self.countries[:-MAX_COUNTRIES]

    def open_position(self, position: str, at: float) -> None:
        self.positions.setdefault(position, at)
        while len(self.positions) > MAX_OPEN_POSITIONS:
            del self.positions[next(iter(self.positions))]

    # -- persistence ---------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        return {
            "f": STATE_FORMAT,
            "first": self.first_seen,
            "s": {
                key: [s.width, [[b, n, str(v)] for b, (n, v) in s.buckets.items()]]
                for key, s in self.series.items()
            },
            "d": {
                key: [s.width, [[b, sorted(v)] for b, v in s.buckets.items()]]
                for key, s in self.distinct.items()
            },
            "days": [[d, str(t.volume), str(t.deposits), t.trades] for d, t in self.days.items()],
            "login": (
                [
                    self.last_login.at,
                    self.last_login.country,
                    self.last_login.latitude,
                    self.last_login.longitude,
                ]
                if self.last_login
                else None
            ),
            "countries": self.countries,
            "pos": self.positions,
            "kyc": self.kyc_country,
            "reg": self.registered_country,
            "risk": self.risk_rating,
            "accounts": self.accounts,
            "fired": self.fired,
        }

    @classmethod
    def from_document(cls, user_id: str, version: int, doc: dict[str, Any]) -> ClientState:
        state = cls(user_id=user_id, version=version)
        state.first_seen = doc.get("first")
        for key, (width, buckets) in doc.get("s", {}).items():
            state.series[key] = Series(width, {b: [n, Decimal(v)] for b, n, v in buckets})
        for key, (width, buckets) in doc.get("d", {}).items():
            state.distinct[key] = DistinctSeries(width, {b: set(v) for b, v in buckets})
        for day, volume, deposits, trades in doc.get("days", []):
            state.days[day] = DayTotals(Decimal(volume), Decimal(deposits), trades)
        login = doc.get("login")
        if login:
            state.last_login = LastLogin(*login)
        state.countries = list(doc.get("countries", []))
        state.positions = dict(doc.get("pos", {}))
        state.kyc_country = doc.get("kyc", "")
        state.registered_country = doc.get("reg", "")
        state.risk_rating = doc.get("risk", "")
        state.accounts = doc.get("accounts", 0)
        state.fired = dict(doc.get("fired", {}))
        return state


def median(values: Iterable[Decimal]) -> Decimal:
    ordered = sorted(values)
    if not ordered:
        return ZERO
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


MAD_TO_SIGMA = Decimal("1.4826")
RELATIVE_SCALE_FLOOR = Decimal("0.05")
ABSOLUTE_SCALE_FLOOR = Decimal("0.01")


def robust_z(today: Decimal, history: list[Decimal]) -> Decimal:
    """(today - median) / (1.4826 * MAD), with a floor on the scale for flat histories."""
    centre = median(history)
    mad = median(abs(v - centre) for v in history)
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_SCALE_FLOOR * abs(centre), ABSOLUTE_SCALE_FLOOR)
    return ((today - centre) / scale).quantize(Decimal("0.01"))
