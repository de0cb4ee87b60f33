"""Composition root of the kyc service: ``python -m pipworks_kyc [serve|migrate]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipworks.kyc.v1 import kyc_service_pb2, kyc_service_pb2_grpc
from pipworks_kyc import __version__
from pipworks_kyc.api import KycApi
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService


def build(infra: Infrastructure) -> Components:
    servicer = KycApi(infra.service_info)
    api = ApiService.of(kyc_service_pb2, kyc_service_pb2_grpc, "KycService", servicer)
    return Components(api=[api])


DEFINITION = ServiceDefinition(
    name="kyc",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
