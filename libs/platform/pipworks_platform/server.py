"""gRPC server bootstrap: aio server, standard health service, reflection, interceptors.

Health reports per service name: ``""`` and every API service follow readiness (the
process is up *and* its dependencies answer); ``liveness`` stays SERVING while the
process can serve at all, so a Kubernetes liveness probe does not restart a pod whose
database is briefly away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from pipworks_platform.interceptors import ServerInterceptor

LIVENESS = "liveness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ApiService:
    """A servicer with the generated function that registers it."""

    descriptor: ServiceDescriptor
    servicer: object
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @property
    def full_name(self) -> str:
        return self.descriptor.full_name

    @classmethod
    def of(cls, pb2: ModuleType, pb2_grpc: ModuleType, name: str, servicer: object) -> ApiService:
        """``ApiService.of(ib_service_pb2, ib_service_pb2_grpc, "IbService", servicer)``."""
        return cls(
            descriptor=pb2.DESCRIPTOR.services_by_name[name],
            servicer=servicer,
            add_to_server=getattr(pb2_grpc, f"add_{name}Servicer_to_server"),
        )


class GrpcServer:
    def __init__(
        self,
        *,
        service: str,
        address: str,
        api_services: Sequence[ApiService],
        max_message_bytes: int = 4 * 1024 * 1024,
        auth: grpc.aio.ServerInterceptor | None = None,
        extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        generic_handlers: Sequence[grpc.GenericRpcHandler] = (),
        reflection_services: Sequence[str] = (),
    ) -> None:
        self._address = address
        self._api_services = list(api_services)
        self._generic_handlers = list(generic_handlers)
        self._reflection_services = list(reflection_services)
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            interceptors=[
                aio_server_interceptor(),
                ServerInterceptor(service=service),
                *([auth] if auth is not None else []),
                *extra_interceptors,
            ],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                # Clients reconnect every few minutes and so re-resolve the (headless)
                # service name: pods an autoscaler adds start taking calls.
                ("grpc.max_connection_age_ms", 300_000),
                ("grpc.max_connection_age_grace_ms", 30_000),
            ],
        )
        self.port = 0

    @property
    def readiness_names(self) -> list[str]:
        return ["", *(s.full_name for s in self._api_services)]

    async def start(self) -> int:
        """Bind and start, health NOT_SERVING until :meth:`set_ready` says otherwise."""
        for api in self._api_services:
            api.add_to_server(api.servicer, self._server)
        if self._generic_handlers:
            self._server.add_generic_rpc_handlers(tuple(self._generic_handlers))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            [
                *(s.full_name for s in self._api_services),
                *self._reflection_services,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self._server,
        )
        self.port = self._server.add_insecure_port(self._address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {self._address}")
        await self._server.start()
        await self.health.set(LIVENESS, SERVING)
        await self.set_ready(False)
        return self.port

    async def set_ready(self, ready: bool) -> None:
        status = SERVING if ready else NOT_SERVING
        for name in self.readiness_names:
            await self.health.set(name, status)

    async def begin_shutdown(self) -> None:
        """Every health name NOT_SERVING; calls keep being served until :meth:`stop`."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace`` seconds."""
        await self._server.stop(grace)
