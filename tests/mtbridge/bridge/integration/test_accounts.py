"""Opening and reading trading accounts on the simulator, with who may see what."""

from __future__ import annotations

import uuid

import grpc
import pytest

from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.mtbridge.bridge.calls import client, dealer, deposit, open_account
from tests.mtbridge.bridge.support import GROUP, SERVER, Bridge, SimControl
from tests.tokens import TokenAuthority


async def test_an_opened_account_exists_on_the_platform_and_belongs_to_its_user(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    opened = await open_account(bridge.stub, token_authority, user, leverage=200)
    account = opened.account
    assert account.login >= 1
    assert (account.server, account.group, account.currency, account.leverage) == (
        SERVER,
        GROUP,
        "USD",
        200,
    )
    assert account.user_id == str(user)
    assert account.trading_enabled
    assert account.withdrawals_enabled
    assert opened.password
    assert opened.investor_password
    assert opened.password != opened.investor_password

    async with sim.manager() as manager:
        on_platform = await manager.get_user(account.login)
    assert (on_platform.group, on_platform.leverage) == (GROUP, 200)
    assert [e.login for e in await bridge.outbox("MtAccountOpened")] == [account.login]
    assert await bridge.scalar("SELECT count(*) FROM accounts") == 1
    # The password is never stored.
    dump = await bridge.sql("SELECT * FROM accounts, account_openings")
    assert opened.password not in repr(dump)

    await deposit(bridge.stub, token_authority, account.login, "250.00")
    got = await bridge.stub.GetAccount(
        pb.GetAccountRequest(server=SERVER, login=account.login),
        metadata=client(token_authority, user, aal=1),
    )
    assert got.account.login == account.login
    assert (got.state.balance, got.state.equity, got.state.free_margin) == (
        "250.00",
        "250.00",
        "250.00",
    )

    listed = await bridge.stub.ListAccounts(
        pb.ListAccountsRequest(), metadata=client(token_authority, user, aal=1)
    )
    assert [a.login for a in listed.accounts] == [account.login]


async def test_a_repeated_open_request_returns_the_same_login_once(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    user, request_id = uuid.uuid4(), str(uuid.uuid4())
    first = await open_account(bridge.stub, token_authority, user, request_id=request_id)
    again = await open_account(bridge.stub, token_authority, user, request_id=request_id)
    assert again.account.login == first.account.login
    assert again.password == ""  # shown once
    assert (await sim.get("/sim/state"))["users"] == 1
    assert len(await bridge.outbox("MtAccountOpened")) == 1


async def test_clients_see_only_their_own_accounts(
    bridge: Bridge, token_authority: TokenAuthority
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices = (await open_account(bridge.stub, token_authority, alice)).account.login
    await open_account(bridge.stub, token_authority, bob)
    as_bob = client(token_authority, bob)
    calls = [
        bridge.stub.GetAccount(pb.GetAccountRequest(server=SERVER, login=alices), metadata=as_bob),
        bridge.stub.GetAccount(pb.GetAccountRequest(server=SERVER, login=999_999), metadata=as_bob),
        bridge.stub.ListAccounts(pb.ListAccountsRequest(user_id=str(alice)), metadata=as_bob),
        bridge.stub.ListDeals(pb.ListDealsRequest(server=SERVER, login=alices), metadata=as_bob),
        bridge.stub.ListPositions(pb.ListPositionsRequest(user_id=str(alice)), metadata=as_bob),
        bridge.stub.Withdraw(
            pb.WithdrawRequest(server=SERVER, login=alices, amount="1", idempotency_key="k"),
            metadata=as_bob,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_details(raised.value).reason == "ACCOUNT_NOT_OWNED"

    staff = dealer(token_authority)
    listed = await bridge.stub.ListAccounts(
        pb.ListAccountsRequest(user_id=str(alice)), metadata=staff
    )
    assert [a.login for a in listed.accounts] == [alices]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await bridge.stub.GetAccount(
            pb.GetAccountRequest(server=SERVER, login=999_999), metadata=staff
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_staff_only_and_two_factor_methods_are_refused_to_others(
    bridge: Bridge, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    login = (await open_account(bridge.stub, token_authority, user)).account.login
    refusals = [
        (
            bridge.stub.Deposit(
                pb.DepositRequest(server=SERVER, login=login, amount="5", idempotency_key="a"),
                metadata=client(token_authority, user),
            ),
            "MISSING_ROLE",
        ),
        (
            bridge.stub.Withdraw(
                pb.WithdrawRequest(server=SERVER, login=login, amount="5", idempotency_key="b"),
                metadata=client(token_authority, user, aal=1),
            ),
            "AAL2_REQUIRED",
        ),
        (
            bridge.stub.Deposit(
                pb.DepositRequest(server=SERVER, login=login, amount="5", idempotency_key="c"),
                metadata=dealer(token_authority, aal=1),
            ),
            "AAL2_REQUIRED",
        ),
        (
            bridge.stub.OpenAccount(
                pb.OpenAccountRequest(user_id=str(user), server=SERVER, group=GROUP, leverage=1),
                metadata=client(token_authority, user),
            ),
            "MISSING_ROLE",
        ),
        (
            bridge.stub.SetTradingEnabled(
                pb.SetTradingEnabledRequest(server=SERVER, login=login),
                metadata=client(token_authority, user),
            ),
            "MISSING_ROLE",
        ),
    ]
    for call, reason in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_details(raised.value).reason == reason
    assert await bridge.scalar("SELECT count(*) FROM balance_operations") == 0


@pytest.mark.parametrize(
    ("fields", "code", "field_or_reason"),
    [
        ({"server": "mt5-nowhere"}, grpc.StatusCode.NOT_FOUND, "SERVER_NOT_FOUND"),
        ({"leverage": 1000}, grpc.StatusCode.INVALID_ARGUMENT, "leverage"),
        ({"group": "demo\\standard"}, grpc.StatusCode.INVALID_ARGUMENT, "group"),
        ({"group": "real\\no-such-group"}, grpc.StatusCode.INVALID_ARGUMENT, "group"),
        ({"currency": "EUR"}, grpc.StatusCode.INVALID_ARGUMENT, "currency"),
        ({"user_id": "someone"}, grpc.StatusCode.INVALID_ARGUMENT, "user_id"),
    ],
)
async def test_bad_open_requests_open_nothing(
    bridge: Bridge,
    sim: SimControl,
    token_authority: TokenAuthority,
    fields: dict[str, object],
    code: grpc.StatusCode,
    field_or_reason: str,
) -> None:
    request = pb.OpenAccountRequest(
        user_id=str(uuid.uuid4()), server=SERVER, group=GROUP, leverage=100, currency="USD"
    )
    for name, value in fields.items():
        setattr(request, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await bridge.stub.OpenAccount(request, metadata=dealer(token_authority))
    assert raised.value.code() == code
    details = error_details(raised.value)
    assert field_or_reason in {details.reason, *(field for field, _ in details.field_violations)}
    assert (await sim.get("/sim/state"))["users"] == 0
    assert await bridge.scalar("SELECT count(*) FROM accounts") == 0


async def test_leverage_changes_within_the_groups_range(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    login = (await open_account(bridge.stub, token_authority, user)).account.login
    changed = await bridge.stub.ChangeLeverage(
        pb.ChangeLeverageRequest(server=SERVER, login=login, leverage=300),
        metadata=client(token_authority, user),
    )
    assert changed.account.leverage == 300
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await bridge.stub.ChangeLeverage(
            pb.ChangeLeverageRequest(server=SERVER, login=login, leverage=501),
            metadata=client(token_authority, user),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(raised.value).reason == "LEVERAGE_OUT_OF_RANGE"
    async with sim.manager() as manager:
        assert (await manager.get_user(login)).leverage == 300
