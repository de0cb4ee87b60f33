"""Composition root of the mtbridge service: ``python -m pipworks_mtbridge [serve|migrate]``."""

from __future__ import annotations

from pathlib import Path

from pipworks.mtbridge.v1 import mtbridge_service_pb2, mtbridge_service_pb2_grpc
from pipworks_mtbridge import __version__
from pipworks_mtbridge.api import MtBridgeApi
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService


def build(infra: Infrastructure) -> Components:
    api = MtBridgeApi(infra.service_info)
    return Components(
        api=[
            ApiService.of(mtbridge_service_pb2, mtbridge_service_pb2_grpc, "MtBridgeService", api)
        ],
    )


DEFINITION = ServiceDefinition(
    name="mtbridge",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
)


def main() -> None:
    run_service(DEFINITION)
