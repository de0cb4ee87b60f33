"""Events from kyc, antifraud and ib, delivered through JetStream, applied once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import grpc
import pytest
from nats.aio.client import Client as NATS

from pipworks.events.v1 import antifraud_pb2, ib_pb2, kyc_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_mtbridge.mt5 import UserRights
from pipworks_platform.grpc_errors import error_details
from tests.helpers import eventually, publish
from tests.mtbridge.bridge.calls import client, deposit, open_account
from tests.mtbridge.bridge.support import GROUP, SERVER, Bridge, SimControl, running_bridge
from tests.tokens import TokenAuthority


@pytest.fixture
async def consuming(
    database_url: str, nats_url: str, sim: SimControl, token_authority: TokenAuthority
) -> AsyncIterator[Bridge]:
    async with running_bridge(
        database_url, nats_url, sim.url, token_authority, consumers=True
    ) as running:
        yield running


async def test_kyc_approval_opens_one_live_account_whatever_the_redelivery(
    consuming: Bridge, sim: SimControl, nats_client: NATS
) -> None:
    js = nats_client.jetstream()
    user = uuid.uuid4()
    approved = kyc_pb2.KycApplicationApproved(
        application_id=str(uuid.uuid4()), user_id=str(user), level=2
    )
    first = str(uuid.uuid4())
    await publish(js, approved, first)
    await publish(js, approved, first)  # a publisher retry: JetStream drops it
    await publish(js, approved, str(uuid.uuid4()))  # the same fact under another event id
    await eventually(
        lambda: consuming.scalar("SELECT count(*) FROM inbox_events"), until=lambda n: n == 2
    )
    rows = await consuming.sql("SELECT user_id, server, group_name, leverage FROM accounts")
    assert [(r["user_id"], r["server"], r["group_name"], r["leverage"]) for r in rows] == [
        (user, SERVER, GROUP, 100)
    ]
    assert (await sim.get("/sim/state"))["users"] == 1
    opened = await consuming.outbox("MtAccountOpened")
    assert [e.user_id for e in opened] == [str(user)]


async def test_restrictions_switch_rights_off_and_on_on_the_platform(
    consuming: Bridge, sim: SimControl, nats_client: NATS, token_authority: TokenAuthority
) -> None:
    js = nats_client.jetstream()
    user = uuid.uuid4()
    login = (await open_account(consuming.stub, token_authority, user)).account.login
    await deposit(consuming.stub, token_authority, login, "500")

    async def rights() -> UserRights:
        async with sim.manager() as manager:
            return (await manager.get_user(login)).rights

    await publish(
        js,
        antifraud_pb2.AntifraudClientRestricted(user_id=str(user), trading=True, withdrawals=True),
        str(uuid.uuid4()),
    )
    await eventually(
        rights,
        until=lambda r: UserRights.TRADE_DISABLED in r and UserRights.WITHDRAWAL_DISABLED in r,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await consuming.stub.Withdraw(
            pb.WithdrawRequest(server=SERVER, login=login, amount="10", idempotency_key="w"),
            metadata=client(token_authority, user),
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value).reason == "WITHDRAWALS_DISABLED"
    got = await consuming.stub.GetAccount(
        pb.GetAccountRequest(server=SERVER, login=login), metadata=client(token_authority, user)
    )
    assert not got.account.trading_enabled
    assert not got.account.withdrawals_enabled

    await publish(
        js,
        antifraud_pb2.AntifraudClientUnrestricted(
            user_id=str(user), trading=True, withdrawals=False
        ),
        str(uuid.uuid4()),
    )
    await eventually(rights, until=lambda r: UserRights.TRADE_DISABLED not in r)
    assert UserRights.WITHDRAWAL_DISABLED in await rights()
    assert UserRights.ENABLED in await rights()
    await publish(
        js,
        antifraud_pb2.AntifraudClientUnrestricted(user_id=str(user), withdrawals=True),
        str(uuid.uuid4()),
    )
    await eventually(rights, until=lambda r: UserRights.WITHDRAWAL_DISABLED not in r)
    withdrawn = await consuming.stub.Withdraw(
        pb.WithdrawRequest(server=SERVER, login=login, amount="10", idempotency_key="w"),
        metadata=client(token_authority, user),
    )
    assert withdrawn.operation.amount == "-10.00"


async def test_an_approved_payout_is_paid_once(
    consuming: Bridge, sim: SimControl, nats_client: NATS, token_authority: TokenAuthority
) -> None:
    js = nats_client.jetstream()
    partner_user = uuid.uuid4()
    login = (await open_account(consuming.stub, token_authority, partner_user)).account.login
    payout = ib_pb2.IbPayoutApproved(
        payout_id=str(uuid.uuid4()),
        partner_id=str(uuid.uuid4()),
        user_id=str(partner_user),
        server=SERVER,
        login=login,
        amount="125.50",
        currency="USD",
    )
    for _ in range(3):  # the same payout, published three times under new event ids
        await publish(js, payout, str(uuid.uuid4()))
    await eventually(
        lambda: consuming.scalar("SELECT count(*) FROM inbox_events"), until=lambda n: n == 3
    )
    async with sim.manager() as manager:
        assert (await manager.get_account(login)).balance == Decimal("125.50")
    rows = await consuming.sql("SELECT kind, amount, status FROM balance_operations")
    assert [(r["kind"], r["amount"], r["status"]) for r in rows] == [
        ("ib_payout", Decimal("125.50"), "completed")
    ]


async def test_a_payout_to_someone_elses_account_is_dead_lettered(
    consuming: Bridge, sim: SimControl, nats_client: NATS, token_authority: TokenAuthority
) -> None:
    js = nats_client.jetstream()
    login = (await open_account(consuming.stub, token_authority, uuid.uuid4())).account.login
    payout = ib_pb2.IbPayoutApproved(
        payout_id="p-1", user_id=str(uuid.uuid4()), server=SERVER, login=login, amount="5"
    )
    await publish(js, payout, str(uuid.uuid4()))
    info = await eventually(
        lambda: js.stream_info("PIPWORKS_DEADLETTER"), until=lambda i: i.state.messages == 1
    )
    assert info.state.messages == 1
    async with sim.manager() as manager:
        assert (await manager.get_account(login)).balance == 0
