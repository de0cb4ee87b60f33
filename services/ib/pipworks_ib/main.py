"""Composition root of the ib service: ``python -m pipworks_ib [serve|migrate]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks_ib import __version__
from pipworks_ib.api import IbApi
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService


def build(infra: Infrastructure) -> Components:
    servicer = IbApi(infra.service_info)
    api = ApiService.of(ib_service_pb2, ib_service_pb2_grpc, "IbService", servicer)
    return Components(api=[api])


DEFINITION = ServiceDefinition(
    name="ib",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
