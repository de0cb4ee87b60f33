"""gRPC surface of the ib service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.common.v1 import service_info_pb2
from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc


class IbApi(ib_service_pb2_grpc.IbServiceServicer):
    def __init__(self, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._describe = describe

    async def GetServiceInfo(
        self,
        request: ib_service_pb2.GetServiceInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> ib_service_pb2.GetServiceInfoResponse:
        return ib_service_pb2.GetServiceInfoResponse(info=self._describe())
