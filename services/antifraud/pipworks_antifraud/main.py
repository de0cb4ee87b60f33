"""Composition root of the antifraud service: ``python -m pipworks_antifraud [serve|migrate]``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import structlog

from pipworks.antifraud.v1 import antifraud_service_pb2, antifraud_service_pb2_grpc
from pipworks_antifraud import __version__
from pipworks_antifraud.api import AntifraudApi
from pipworks_antifraud.domain.engine import EngineConfig
from pipworks_antifraud.domain.geo import GeoResolver, IpRangeTable, NoGeo
from pipworks_antifraud.handlers.staff import Staff
from pipworks_antifraud.handlers.stream import Detector, RestrictionExpiry, RuleBook, StateCache
from pipworks_antifraud.settings import AntifraudSettings
from pipworks_platform.consumer import BatchHandler, Handler, Subscription
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService

log = structlog.get_logger(__name__)

EVENT_RETRIES = 30
EVENT_BACKOFF = (1.0, 5.0, 30.0, 120.0)
CONSUMED = {
    "antifraud-identity": [
        "pipworks.identity.v1.user.registered",
        "pipworks.identity.v1.login.succeeded",
        "pipworks.identity.v1.login.failed",
    ],
    "antifraud-kyc": ["pipworks.kyc.v1.application.approved"],
    "antifraud-mtbridge": [
        "pipworks.mtbridge.v1.deal.executed",
        "pipworks.mtbridge.v1.balance.changed",
        "pipworks.mtbridge.v1.account.opened",
    ],
}


def load_geo(settings: AntifraudSettings) -> GeoResolver:
    if settings.antifraud_geoip_csv is None:
        log.warning("no IP-range file (PIPWORKS_ANTIFRAUD_GEOIP_CSV): login geolocation is off")
        return NoGeo()
    with settings.antifraud_geoip_csv.open(encoding="utf-8") as lines:
        table = IpRangeTable.from_csv_lines(lines)
    log.info("IP ranges loaded", ranges=len(table))
    return table


@dataclass
class Deps:
    rulebook: RuleBook
    detector: Detector
    staff: Staff
    expiry: RestrictionExpiry


def build_deps(infra: Infrastructure, geo: GeoResolver | None = None) -> Deps:
    settings = cast(AntifraudSettings, infra.settings)
    config = EngineConfig(
        baseline_days=settings.antifraud_baseline_days,
        baseline_min_days=min(
            settings.antifraud_baseline_min_days, settings.antifraud_baseline_days
        ),
    )
    rulebook = RuleBook(infra.unit_of_work, config)
    cache = StateCache(settings.antifraud_state_cache_size)
    return Deps(
        rulebook=rulebook,
        detector=Detector(rulebook, geo if geo is not None else load_geo(settings), cache),
        staff=Staff(infra.unit_of_work, rulebook),
        expiry=RestrictionExpiry(
            infra.unit_of_work,
            settings.antifraud_expiry_interval_seconds,
            retention_days=settings.antifraud_event_retention_days,
        ),
    )


def subscriptions(
    handler: Handler, batch_handler: BatchHandler, batch_size: int = 64
) -> list[Subscription]:
    """One durable per producing service; a fetched batch applies in one transaction."""
    return [
        Subscription(
            durable=durable,
            subjects=subjects,
            handler=handler,
            batch_handler=batch_handler,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
            batch_size=batch_size,
        )
        for durable, subjects in CONSUMED.items()
    ]


def build(infra: Infrastructure) -> Components:
    return assemble(build_deps(infra), infra)


def assemble(deps: Deps, infra: Infrastructure) -> Components:
    settings = cast(AntifraudSettings, infra.settings)
    stopping = asyncio.Event()

    async def refresh_rules() -> None:
        await deps.rulebook.refresh_forever(settings.antifraud_rules_refresh_seconds, stopping)

    async def stop_refresh() -> None:
        stopping.set()

    api = AntifraudApi(deps.staff, infra.service_info)
    detector = deps.detector

    return Components(
        api=[
            ApiService.of(
                antifraud_service_pb2, antifraud_service_pb2_grpc, "AntifraudService", api
            )
        ],
        subscriptions=subscriptions(
            detector.handle, detector.handle_batch, settings.antifraud_fetch_batch
        ),
        background=[deps.expiry.run, refresh_rules],
        on_stop=[deps.expiry.stop, stop_refresh],
    )


DEFINITION = ServiceDefinition(
    name="antifraud",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
    settings_type=AntifraudSettings,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
