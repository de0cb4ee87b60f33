"""gRPC surface of the antifraud service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.antifraud.v1 import antifraud_service_pb2, antifraud_service_pb2_grpc
from pipworks.common.v1 import service_info_pb2


class AntifraudApi(antifraud_service_pb2_grpc.AntifraudServiceServicer):
    def __init__(self, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._describe = describe

    async def GetServiceInfo(
        self,
        request: antifraud_service_pb2.GetServiceInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> antifraud_service_pb2.GetServiceInfoResponse:
        return antifraud_service_pb2.GetServiceInfoResponse(info=self._describe())
