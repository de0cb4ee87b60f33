"""Composition root of the mtbridge service: ``python -m pipworks_mtbridge [serve|migrate]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import structlog

from pipworks.mtbridge.v1 import mtbridge_service_pb2, mtbridge_service_pb2_grpc
from pipworks_mtbridge import __version__
from pipworks_mtbridge.adapters.mt5_platform import Mt5Platform
from pipworks_mtbridge.api import MtBridgeApi
from pipworks_mtbridge.handlers import BridgeConfig, Deps, TradingServer
from pipworks_mtbridge.handlers.consumers import Consumers
from pipworks_mtbridge.handlers.context import KycAccountPlan
from pipworks_mtbridge.mt5 import Mt5Client
from pipworks_mtbridge.settings import MtBridgeSettings
from pipworks_mtbridge.validation import RequestParser
from pipworks_mtbridge.workers import DealSyncLoop, MarginLoop
from pipworks_platform.consumer import Handler, Subscription
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService

log = structlog.get_logger(__name__)

# Platform outages can outlast the default retries: keep an event for about an hour.
EVENT_RETRIES = 30
EVENT_BACKOFF = (1.0, 5.0, 30.0, 120.0)


def build_deps(infra: Infrastructure) -> Deps:
    settings = cast(MtBridgeSettings, infra.settings)
    servers = {
        config.name: TradingServer(
            name=config.name,
            group_prefix=config.group_prefix,
            platform=Mt5Platform(
                Mt5Client(
                    config.url,
                    config.manager_login,
                    config.password.get_secret_value(),
                    agent=f"pipworks-{infra.name}",
                    timeout=settings.mtbridge_platform_timeout_seconds,
                )
            ),
        )
        for config in settings.mtbridge_servers
    }
    plan = None
    if settings.mtbridge_kyc_server and settings.mtbridge_kyc_group:
        plan = KycAccountPlan(
            settings.mtbridge_kyc_server,
            settings.mtbridge_kyc_group,
            settings.mtbridge_kyc_leverage,
        )
    config = BridgeConfig(
        margin=settings.margin_policy,
        kyc_account=plan,
        sync_overlap_seconds=settings.mtbridge_sync_overlap_seconds,
        sync_batch_size=settings.mtbridge_sync_batch_size,
    )
    return Deps(uow=infra.unit_of_work, servers=servers, config=config)


def subscriptions(consumers: Consumers) -> list[Subscription]:
    def subscription(
        durable: str, subjects: list[str], handler: Handler, *, ordered: bool = False
    ) -> Subscription:
        return Subscription(
            durable=durable,
            subjects=subjects,
            handler=handler,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
            ordered=ordered,
        )

    return [
        subscription(
            "mtbridge-kyc-approved",
            ["pipworks.kyc.v1.application.approved"],
            consumers.on_kyc_approved,
        ),
        subscription(
            "mtbridge-antifraud-restrictions",
            [
                "pipworks.antifraud.v1.client.restricted",
                "pipworks.antifraud.v1.client.unrestricted",
            ],
            consumers.on_restriction_changed,
            ordered=True,  # a restriction and its lifting apply in publication order
        ),
        subscription(
            "mtbridge-ib-payouts", ["pipworks.ib.v1.payout.approved"], consumers.on_payout_approved
        ),
    ]


def build(infra: Infrastructure) -> Components:
    return assemble(build_deps(infra), infra)


def assemble(deps: Deps, infra: Infrastructure) -> Components:
    """The service's components over the given dependencies (tests substitute platforms)."""
    settings = cast(MtBridgeSettings, infra.settings)
    if not deps.servers:
        log.warning("no trading servers configured (PIPWORKS_MTBRIDGE_SERVERS)")
    sync = DealSyncLoop(deps, settings.mtbridge_sync_interval_seconds)
    margin = MarginLoop(deps, settings.mtbridge_margin_interval_seconds)
    api = MtBridgeApi(deps, RequestParser(), infra.service_info)
    return Components(
        api=[
            ApiService.of(mtbridge_service_pb2, mtbridge_service_pb2_grpc, "MtBridgeService", api)
        ],
        subscriptions=subscriptions(Consumers(deps)),
        background=[sync.run, margin.run],
        on_stop=[
            sync.stop_and_wait,
            margin.stop_and_wait,
            *(s.platform.close for s in deps.servers.values()),
        ],
    )


DEFINITION = ServiceDefinition(
    name="mtbridge",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
    settings_type=MtBridgeSettings,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
