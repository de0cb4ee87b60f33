"""Which backend serves which API: the route table, parsed from ``PIPWORKS_GATEWAY_ROUTES``.

A route's key is a fully-qualified service name (``pipworks.ib.v1.IbService``) or a
proto package (``pipworks.kyc.v1``) that covers every service in it. A service name beats
a package, and a longer package beats a shorter one, so one package can go to one
backend while a single service in it is split out to another.

Pure: no gRPC, no I/O. Errors are ``ValueError`` listing every bad entry at once, so an
operator fixes the variable in one go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ROUTES_VARIABLE = "PIPWORKS_GATEWAY_ROUTES"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_DNS_SCHEME = "dns:///"


@dataclass(frozen=True, slots=True)
class Route:
    """Calls to ``prefix`` (a service or a package) go to ``target`` (a gRPC target)."""

    prefix: str
    target: str

    def covers(self, service: str) -> bool:
        return service == self.prefix or service.startswith(self.prefix + ".")


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        # Longest prefix first: the first route that covers a service is the most specific.
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    @property
    def targets(self) -> list[str]:
        """Distinct backend targets, in a stable order."""
        return sorted({r.target for r in self._routes})

    def target_for(self, service: str) -> str | None:
        for route in self._routes:
            if route.covers(service):
                return route.target
        return None

    def unknown_prefixes(self, services: Iterable[str]) -> list[str]:
        """Route keys that name no service in ``services`` (most likely typos)."""
        known = list(services)
        return [r.prefix for r in self._routes if not any(r.covers(s) for s in known)]


def parse_routes(text: str) -> RouteTable:
    """``svc-or-package=host:port,...`` → :class:`RouteTable`; ``ValueError`` on any problem."""
    problems: list[str] = []
    routes: dict[str, Route] = {}
    entries = [e.strip() for e in text.split(",")]
    if not any(entries):
        raise ValueError("must name at least one route, e.g. pipworks.ib.v1.IbService=ib:7063")
    for entry in entries:
        if not entry:
            problems.append("empty entry (stray comma)")
            continue
        prefix, sep, target = (part.strip() for part in entry.partition("="))
        if not sep:
            problems.append(f"{entry!r} is not SERVICE_OR_PACKAGE=HOST:PORT")
            continue
        if not _NAME.fullmatch(prefix):
            problems.append(f"{prefix!r} is not a proto service or package name")
        elif prefix in routes:
            problems.append(f"{prefix!r} is routed more than once")
        if not _valid_target(target):
            problems.append(f"target of {prefix!r} must be HOST:PORT or dns:///HOST:PORT")
        routes.setdefault(prefix, Route(prefix, target))
    if problems:
        raise ValueError("; ".join(problems))
    return RouteTable(routes.values())


def _valid_target(target: str) -> bool:
    address = target.removeprefix(_DNS_SCHEME)
    host, sep, port = address.rpartition(":")
    return (
        bool(sep)
        and _HOST.fullmatch(host) is not None
        and port.isdigit()
        and 1 <= int(port) <= 65535
    )
