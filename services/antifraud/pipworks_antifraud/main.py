"""Composition root of the antifraud service: ``python -m pipworks_antifraud [serve|migrate]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipworks.antifraud.v1 import antifraud_service_pb2, antifraud_service_pb2_grpc
from pipworks_antifraud import __version__
from pipworks_antifraud.api import AntifraudApi
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService


def build(infra: Infrastructure) -> Components:
    api = AntifraudApi(infra.service_info)
    return Components(
        api=[
            ApiService.of(
                antifraud_service_pb2, antifraud_service_pb2_grpc, "AntifraudService", api
            )
        ],
    )


DEFINITION = ServiceDefinition(
    name="antifraud",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
