"""gRPC surface of the kyc service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.common.v1 import service_info_pb2
from pipworks.kyc.v1 import kyc_service_pb2, kyc_service_pb2_grpc


class KycApi(kyc_service_pb2_grpc.KycServiceServicer):
    def __init__(self, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._describe = describe

    async def GetServiceInfo(
        self,
        request: kyc_service_pb2.GetServiceInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> kyc_service_pb2.GetServiceInfoResponse:
        return kyc_service_pb2.GetServiceInfoResponse(info=self._describe())
