"""gRPC surface of the identity service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.common.v1 import service_info_pb2
from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc


class IdentityApi(identity_service_pb2_grpc.IdentityServiceServicer):
    def __init__(self, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._describe = describe

    async def GetServiceInfo(
        self,
        request: identity_service_pb2.GetServiceInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> identity_service_pb2.GetServiceInfoResponse:
        return identity_service_pb2.GetServiceInfoResponse(info=self._describe())
