"""Where an IP address is, without network lookups: ranges from a CSV, distances on a sphere.

The built-in resolver reads rows of ``network,country_code,latitude,longitude`` (the
GeoLite2-City-CSV / DB-IP style, CIDR networks, IPv4 and IPv6) and answers by binary
search. Other resolvers plug in behind :class:`GeoResolver`.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

EARTH_RADIUS_KM = 6371.0088
MIN_ELAPSED_HOURS = 1 / 60  # two logins a second apart count as a minute apart


@dataclass(frozen=True)
class Location:
    country: str
    latitude: float
    longitude: float


class GeoResolver(Protocol):
    def locate(self, ip: str) -> Location | None: ...


class NoGeo:
    """A resolver that knows nowhere (geolocation switched off)."""

    def locate(self, ip: str) -> Location | None:
        return None


class GeoDataError(ValueError):
    """A row of the IP-range file that cannot be read."""


class IpRangeTable:
    """Sorted, non-overlapping ranges per IP version; lookups are O(log n)."""

    def __init__(self, rows: Iterable[tuple[str, Location]]) -> None:
        ranges: dict[int, list[tuple[int, int, Location]]] = {4: [], 6: []}
        for network_text, location in rows:
            network = ipaddress.ip_network(network_text, strict=False)
            ranges[network.version].append(
                (int(network.network_address), int(network.broadcast_address), location)
            )
        self._starts: dict[int, list[int]] = {}
        self._ranges: dict[int, list[tuple[int, int, Location]]] = {}
        for version, items in ranges.items():
            items.sort(key=lambda item: item[0])
            self._ranges[version] = items
            self._starts[version] = [item[0] for item in items]

    def __len__(self) -> int:
        return sum(len(items) for items in self._ranges.values())

    def locate(self, ip: str) -> Location | None:
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        if index < 0:
            return None
        start, end, location = self._ranges[address.version][index]
        return location if start <= value <= end else None

    @classmethod
    def from_csv_lines(cls, lines: Iterable[str]) -> IpRangeTable:
        """Rows of network,country,latitude,longitude; a header row and # comments are skipped."""
        rows: list[tuple[str, Location]] = []
        for number, row in enumerate(csv.reader(lines), start=1):
            if not row or row[0].startswith("#") or row[0].strip().lower() == "network":
                continue
            if len(row) < 4:
                raise GeoDataError(f"line {number}: expected network,country,latitude,longitude")
            network, country, latitude, longitude = (cell.strip() for cell in row[:4])
            try:
                ipaddress.ip_network(network, strict=False)
                location = Location(country.upper(), float(latitude), float(longitude))
            except ValueError as exc:
                raise GeoDataError(f"line {number}: {exc}") from None
            rows.append((network, location))
        return cls(rows)


def haversine_km(a: Location, b: Location) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def travel_speed_kmh(distance_km: float, elapsed_seconds: float) -> float:
    hours = max(elapsed_seconds / 3600, MIN_ELAPSED_HOURS)
    return distance_km / hours
