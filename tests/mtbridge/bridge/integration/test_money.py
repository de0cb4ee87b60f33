"""Deposits, withdrawals and credit reach the platform exactly once per idempotency key,
including across a crash between the platform call and the bridge's commit."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.handlers import Deps
from pipworks_platform.grpc_errors import error_details
from tests.mtbridge.bridge.calls import client, dealer, deposit, open_account
from tests.mtbridge.bridge.support import SERVER, Bridge, SimControl, running_bridge
from tests.tokens import TokenAuthority


class Crash(Exception):
    """The bridge 'dies' right after the platform applied the operation."""


class CrashAfterBalance:
    """A platform whose first balance operations go through and then lose the bridge."""

    def __init__(self, platform: object, crashes: int = 1) -> None:
        self._platform = platform
        self.crashes = crashes

    def __getattr__(self, name: str) -> object:
        return getattr(self._platform, name)

    async def apply_balance(self, *args: object, **kwargs: object) -> int:
        ticket = await self._platform.apply_balance(*args, **kwargs)  # type: ignore[attr-defined]
        if self.crashes:
            self.crashes -= 1
            raise Crash(f"lost after deal {ticket}")
        return ticket


def crashing(deps: Deps) -> Deps:
    servers = {
        name: dataclasses.replace(server, platform=CrashAfterBalance(server.platform))
        for name, server in deps.servers.items()
    }
    return dataclasses.replace(deps, servers=servers)


async def balance_of(sim: SimControl, login: int) -> Decimal:
    async with sim.manager() as manager:
        return (await manager.get_account(login)).balance


async def balance_deals(sim: SimControl, login: int) -> list[object]:
    async with sim.manager() as manager:
        deals = await manager.get_deals(
            logins=[login],
            since=datetime(2000, 1, 1, tzinfo=UTC),
            until=datetime(2100, 1, 1, tzinfo=UTC),
        )
    return [d for d in deals if d.action in (2, 3)]


async def test_a_retried_deposit_moves_money_once(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
    first = await deposit(bridge.stub, token_authority, login, "100.50", key="dep-1")
    again = await deposit(bridge.stub, token_authority, login, "100.50", key="dep-1")
    assert again.operation == first.operation
    assert first.operation.amount == "100.50"
    assert first.operation.deal_ticket > 0
    assert await balance_of(sim, login) == Decimal("100.50")
    assert len(await balance_deals(sim, login)) == 1

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await deposit(bridge.stub, token_authority, login, "99", key="dep-1")
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value).reason == "IDEMPOTENCY_KEY_REUSED"
    assert await balance_of(sim, login) == Decimal("100.50")


async def test_concurrent_requests_with_one_key_move_money_once(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
    replies = await asyncio.gather(
        *(deposit(bridge.stub, token_authority, login, "33.30", key="race-1") for _ in range(8))
    )
    assert len({reply.operation.deal_ticket for reply in replies}) == 1
    assert await balance_of(sim, login) == Decimal("33.30")
    assert len(await balance_deals(sim, login)) == 1


async def test_a_crash_after_the_platform_call_is_reconciled_on_retry(
    database_url: str, nats_url: str, sim: SimControl, token_authority: TokenAuthority
) -> None:
    async with running_bridge(
        database_url, nats_url, sim.url, token_authority, wrap=crashing
    ) as bridge:
        login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await deposit(bridge.stub, token_authority, login, "75.25", key="crash-1")
        assert raised.value.code() == grpc.StatusCode.INTERNAL
        # The platform applied it; the bridge's own record is still pending.
        assert await balance_of(sim, login) == Decimal("75.25")
        assert await bridge.scalar("SELECT status FROM balance_operations") == "pending"

    async with running_bridge(database_url, nats_url, sim.url, token_authority) as bridge:
        retried = await deposit(bridge.stub, token_authority, login, "75.25", key="crash-1")
        again = await deposit(bridge.stub, token_authority, login, "75.25", key="crash-1")
        assert await bridge.scalar("SELECT status FROM balance_operations") == "completed"
    deals = await balance_deals(sim, login)
    assert [d.ticket for d in deals] == [retried.operation.deal_ticket]
    assert again.operation == retried.operation
    assert await balance_of(sim, login) == Decimal("75.25")


async def test_a_platform_outage_is_unavailable_and_the_retry_applies_once(
    bridge: Bridge, sim_process: Mt5SimProcess, sim: SimControl, token_authority: TokenAuthority
) -> None:
    login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
    sim_process.stop()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await deposit(bridge.stub, token_authority, login, "10", key="outage-1")
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_details(raised.value).reason == "PLATFORM_UNAVAILABLE"
    finally:
        sim_process.start()
    await deposit(bridge.stub, token_authority, login, "10", key="outage-1")
    await deposit(bridge.stub, token_authority, login, "10", key="outage-1")
    assert await balance_of(sim, login) == Decimal(10)


async def test_withdrawals_are_limited_to_the_free_margin(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    login = (await open_account(bridge.stub, token_authority, user)).account.login
    await deposit(bridge.stub, token_authority, login, "50")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await bridge.stub.Withdraw(
            pb.WithdrawRequest(server=SERVER, login=login, amount="50.01", idempotency_key="w1"),
            metadata=client(token_authority, user),
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value).reason == "INSUFFICIENT_FREE_MARGIN"
    withdrawn = await bridge.stub.Withdraw(
        pb.WithdrawRequest(server=SERVER, login=login, amount="20", idempotency_key="w1"),
        metadata=client(token_authority, user),
    )
    assert withdrawn.operation.amount == "-20.00"
    assert await balance_of(sim, login) == Decimal(30)


async def test_credit_is_granted_and_removed(
    bridge: Bridge, sim: SimControl, token_authority: TokenAuthority
) -> None:
    login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
    for amount, key in (("40", "c1"), ("-15.5", "c2")):
        await bridge.stub.Credit(
            pb.CreditRequest(server=SERVER, login=login, amount=amount, idempotency_key=key),
            metadata=dealer(token_authority),
        )
    async with sim.manager() as manager:
        account = await manager.get_account(login)
    assert (account.balance, account.credit) == (Decimal(0), Decimal("24.5"))


@pytest.mark.parametrize(
    ("login_offset", "amount", "code", "detail"),
    [
        (0, "0", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (0, "-5", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (0, "12,5", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (0, "1e3", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (0, "10.001", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (1000, "10", grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND"),
    ],
)
async def test_bad_money_requests_move_nothing(
    bridge: Bridge,
    sim: SimControl,
    token_authority: TokenAuthority,
    login_offset: int,
    amount: str,
    code: grpc.StatusCode,
    detail: str,
) -> None:
    login = (await open_account(bridge.stub, token_authority, uuid.uuid4())).account.login
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await deposit(bridge.stub, token_authority, login + login_offset, amount)
    assert raised.value.code() == code
    details = error_details(raised.value)
    assert detail in {details.reason, *(field for field, _ in details.field_violations)}
    assert await balance_of(sim, login) == 0
    assert await bridge.scalar("SELECT count(*) FROM balance_operations") == 0


async def test_an_unknown_server_is_not_found(
    bridge: Bridge, token_authority: TokenAuthority
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await bridge.stub.Deposit(
            pb.DepositRequest(server="mt5-other", login=5, amount="1", idempotency_key="k"),
            metadata=dealer(token_authority),
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(raised.value).reason == "SERVER_NOT_FOUND"
