"""gRPC surface of the mtbridge service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.common.v1 import service_info_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2, mtbridge_service_pb2_grpc


class MtBridgeApi(mtbridge_service_pb2_grpc.MtBridgeServiceServicer):
    def __init__(self, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._describe = describe

    async def GetServiceInfo(
        self,
        request: mtbridge_service_pb2.GetServiceInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> mtbridge_service_pb2.GetServiceInfoResponse:
        return mtbridge_service_pb2.GetServiceInfoResponse(info=self._describe())
