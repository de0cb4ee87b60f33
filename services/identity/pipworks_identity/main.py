"""Composition root of the identity service: ``python -m pipworks_identity [serve|migrate]``."""

from __future__ import annotations

from pathlib import Path

from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from pipworks_identity import __version__
from pipworks_identity.api import IdentityApi
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService


def build(infra: Infrastructure) -> Components:
    api = IdentityApi(infra.service_info)
    return Components(
        api=[
            ApiService.of(identity_service_pb2, identity_service_pb2_grpc, "IdentityService", api)
        ],
    )


DEFINITION = ServiceDefinition(
    name="identity",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
)


def main() -> None:
    run_service(DEFINITION)
