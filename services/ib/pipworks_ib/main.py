"""Composition root of the ib service: ``python -m pipworks_ib [serve|migrate|verify-audit]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks_ib import __version__
from pipworks_ib.api import IbApi
from pipworks_ib.consumers import (
    ANTIFRAUD_SUBJECTS,
    BRIDGE_SUBJECTS,
    IDENTITY_SUBJECTS,
    Consumers,
)
from pipworks_ib.handlers.context import Deps
from pipworks_ib.settings import IbSettings
from pipworks_platform.consumer import Subscription
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService

# Keep an event for about an hour of retries: a database outage should not park it.
EVENT_RETRIES = 30
EVENT_BACKOFF = (1.0, 5.0, 30.0, 120.0)
BRIDGE_DURABLE = "ib-mtbridge"


def build_deps(infra: Infrastructure) -> Deps:
    return Deps(uow=infra.unit_of_work, settings=cast(IbSettings, infra.settings))


def subscriptions(consumers: Consumers) -> list[Subscription]:
    return [
        Subscription(
            durable="ib-identity",
            subjects=IDENTITY_SUBJECTS,
            handler=consumers.on_identity_event,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
        ),
        Subscription(
            durable="ib-antifraud",
            subjects=ANTIFRAUD_SUBJECTS,
            handler=consumers.on_antifraud_event,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
        ),
    ]


def bridge_subscription(consumers: Consumers, batch_size: int) -> Subscription:
    """Accounts, deals and balances in one ordered consumer; a fetch applies as one batch."""
    return Subscription(
        durable=BRIDGE_DURABLE,
        subjects=BRIDGE_SUBJECTS,
        handler=consumers.on_bridge_event,
        batch_handler=consumers.on_bridge_batch,
        max_deliver=EVENT_RETRIES,
        backoff=EVENT_BACKOFF,
        batch_size=batch_size,
        ordered=True,
    )


def build(infra: Infrastructure) -> Components:
    return assemble(build_deps(infra), infra)


def assemble(deps: Deps, infra: Infrastructure) -> Components:
    consumers = Consumers(deps)
    api = ApiService.of(
        ib_service_pb2, ib_service_pb2_grpc, "IbService", IbApi(deps, infra.service_info)
    )
    return Components(
        api=[api],
        subscriptions=[
            *subscriptions(consumers),
            bridge_subscription(consumers, deps.settings.ib_consumer_batch_size),
        ],
    )


DEFINITION = ServiceDefinition(
    name="ib",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
    settings_type=IbSettings,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
