"""Calling the bridge as its users do: tokens for clients and staff, common requests."""

from __future__ import annotations

import uuid

from pipworks.common.v1 import payment_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as pb_grpc
from tests.mtbridge.bridge.support import GROUP, SERVER
from tests.tokens import TokenAuthority

Metadata = tuple[tuple[str, str], ...]


def dealer(authority: TokenAuthority, *, aal: int = 2) -> Metadata:
    return authority.metadata(subject=str(uuid.uuid4()), roles=("dealer",), aal=aal, mfa=True)


def client(authority: TokenAuthority, user_id: uuid.UUID, *, aal: int = 2) -> Metadata:
    return authority.metadata(subject=str(user_id), roles=("client",), aal=aal, mfa=aal == 2)


async def open_account(
    stub: pb_grpc.MtBridgeServiceStub,
    authority: TokenAuthority,
    user_id: uuid.UUID,
    *,
    leverage: int = 100,
    **fields: str,
) -> pb.OpenAccountResponse:
    request = pb.OpenAccountRequest(
        user_id=str(user_id),
        server=SERVER,
        group=GROUP,
        leverage=leverage,
        currency="USD",
        **fields,
    )
    return await stub.OpenAccount(request, metadata=dealer(authority))


async def deposit(
    stub: pb_grpc.MtBridgeServiceStub,
    authority: TokenAuthority,
    login: int,
    amount: str,
    key: str | None = None,
    payment: payment_pb2.PaymentDetails | None = None,
) -> pb.DepositResponse:
    request = pb.DepositRequest(
        server=SERVER,
        login=login,
        amount=amount,
        idempotency_key=key or uuid.uuid4().hex,
        payment=payment,
    )
    return await stub.Deposit(request, metadata=dealer(authority))
