"""Deposits, withdrawals, credit and IB payouts: money moves once per idempotency key.

1. The operation is committed as *pending* before the platform is called, with a deal
   comment derived from the key.
2. In a second transaction the pending row is locked (a concurrent retry waits here),
   the platform applies the operation, and the row is completed with the deal ticket.
3. A retry that finds the row still pending (the bridge died between 2's platform call
   and its commit) looks for a balance deal with that comment on the platform: found,
   it is adopted; not found, the operation was never applied and is applied now.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import structlog

from pipworks_mtbridge import commands
from pipworks_mtbridge.adapters.repositories import AccountRepository, OperationRepository
from pipworks_mtbridge.domain.accounts import TradingAccount
from pipworks_mtbridge.domain.balance import (
    BalanceOperation,
    OperationKind,
    OperationStatus,
    deal_comment,
    signed_amount,
)
from pipworks_mtbridge.domain.money import InvalidAmount, check_precision, in_currency
from pipworks_mtbridge.handlers.context import Caller, Deps, TradingServer
from pipworks_mtbridge.handlers.platform_calls import platform_errors
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound

log = structlog.get_logger(__name__)

# How far around a pending operation's creation its platform deal is looked for.
RECONCILE_WINDOW = timedelta(hours=1)
INSUFFICIENT = "INSUFFICIENT_FREE_MARGIN"


async def move_money(deps: Deps, caller: Caller, cmd: commands.MoveMoney) -> BalanceOperation:
    """An API request: the caller must be allowed to act on the account."""
    server = deps.server(cmd.account.server)
    async with deps.uow() as uow:
        account = await AccountRepository(uow.session).get(server.name, cmd.account.login)
    account = caller.require_account(account, server.name, cmd.account.login)
    return await apply_operation(deps, server, account, cmd)


async def pay_out(
    deps: Deps,
    payout_id: str,
    user_id: uuid.UUID,
    ref: commands.AccountRef,
    amount: Decimal,
    currency: str,
) -> BalanceOperation:
    """An approved IB payout, credited to the partner's own account once per payout id."""
    server = deps.server(ref.server)
    async with deps.uow() as uow:
        account = await AccountRepository(uow.session).get(server.name, ref.login)
    if account is None or account.user_id != user_id:
        raise NotFound("trading account", f"{ref.server}:{ref.login}", reason="ACCOUNT_NOT_FOUND")
    if currency and currency != account.currency:
        raise InvalidArgument.for_field("currency", f"the account currency is {account.currency}")
    cmd = commands.MoveMoney(ref, OperationKind.IB_PAYOUT, amount, f"ib-payout:{payout_id}")
    return await apply_operation(deps, server, account, cmd)


async def apply_operation(
    deps: Deps, server: TradingServer, account: TradingAccount, cmd: commands.MoveMoney
) -> BalanceOperation:
    try:
        check_precision(cmd.amount, account.currency_digits)
    except InvalidAmount as exc:
        raise InvalidArgument.for_field("amount", str(exc), reason="AMOUNT_TOO_PRECISE") from None
    amount = signed_amount(cmd.kind, cmd.amount)
    key = cmd.idempotency_key
    async with deps.uow() as uow:
        existing = await OperationRepository(uow.session).find(server.name, account.login, key)
    if existing is not None:
        _check_same_request(existing, cmd.kind, amount)
        if existing.status is not OperationStatus.PENDING:
            return _outcome(existing, account)
        fresh = False  # an earlier attempt may have reached the platform
    else:
        await _check_allowed(server, account, cmd.kind, amount)
        fresh = await _record_pending(deps, server, account, cmd, amount)
    return await _execute(deps, server, account, cmd, amount, reconcile=not fresh)


async def _check_allowed(
    server: TradingServer, account: TradingAccount, kind: OperationKind, amount: Decimal
) -> None:
    if kind is not OperationKind.WITHDRAWAL:
        return
    if not account.rights.withdrawals:
        raise FailedPrecondition(
            "withdrawals are disabled on this account", reason="WITHDRAWALS_DISABLED"
        )
    with platform_errors(server.name):
        state = await server.platform.account_state(account.login)
    if -amount > state.free_margin:
        raise FailedPrecondition("the amount exceeds the free margin", reason=INSUFFICIENT)


async def _record_pending(
    deps: Deps,
    server: TradingServer,
    account: TradingAccount,
    cmd: commands.MoveMoney,
    amount: Decimal,
) -> bool:
    """Commit the pending operation; False when a concurrent twin recorded it first."""
    kind, key = cmd.kind, cmd.idempotency_key
    pending = BalanceOperation(
        id=uuid.uuid4(),
        server=server.name,
        login=account.login,
        kind=kind,
        amount=amount,
        currency=account.currency,
        idempotency_key=key,
        comment=deal_comment(kind, server.name, account.login, key),
        status=OperationStatus.PENDING,
        created_at=deps.clock(),
        payment=cmd.payment,
    )
    async with deps.uow() as uow:
        inserted = await OperationRepository(uow.session).add_if_absent(pending)
        await uow.commit()
    return inserted


async def _execute(
    deps: Deps,
    server: TradingServer,
    account: TradingAccount,
    cmd: commands.MoveMoney,
    amount: Decimal,
    *,
    reconcile: bool,
) -> BalanceOperation:
    async with deps.uow() as uow:
        operations = OperationRepository(uow.session)
        op = await operations.find(server.name, account.login, cmd.idempotency_key, for_update=True)
        assert op is not None
        _check_same_request(op, cmd.kind, amount)  # a concurrent twin may differ
        if op.status is not OperationStatus.PENDING:  # a concurrent twin finished first
            return _outcome(op, account)
        op = _in_currency(op, account)
        ticket = await _already_applied(deps, server, op) if reconcile else None
        if ticket is None:
            try:
                with platform_errors(server.name):
                    ticket = await server.platform.apply_balance(
                        op.login, op.amount, op.comment, credit=op.kind.is_credit
                    )
            except FailedPrecondition as refused:  # a definitive no: nothing was applied
                await operations.reject(op.id, refused.reason, deps.clock())
                await uow.commit()
                raise
        else:
            log.warning(
                "balance operation adopted from the platform after an interrupted attempt",
                server=server.name,
                login=op.login,
                operation_id=str(op.id),
                deal=ticket,
            )
        now = deps.clock()
        await operations.complete(op.id, ticket, now)
        await uow.commit()
    log.info(
        "balance operation applied",
        server=server.name,
        login=op.login,
        kind=op.kind.value,
        operation_id=str(op.id),
        deal=ticket,
    )
    return replace(op, status=OperationStatus.COMPLETED, deal_ticket=ticket, completed_at=now)


async def _already_applied(deps: Deps, server: TradingServer, op: BalanceOperation) -> int | None:
    """The ticket of the platform deal an earlier, interrupted attempt made, if any."""
    with platform_errors(server.name):
        found = await server.platform.deals(
            logins=[op.login],
            since=op.created_at - RECONCILE_WINDOW,
            until=deps.clock() + RECONCILE_WINDOW,
        )
    for deal in found:
        if deal.is_money and deal.comment == op.comment:
            return deal.ticket
    return None


def _check_same_request(op: BalanceOperation, kind: OperationKind, amount: Decimal) -> None:
    if not op.same_request(kind, amount):
        raise FailedPrecondition(
            "the idempotency key was used for a different operation",
            reason="IDEMPOTENCY_KEY_REUSED",
        )


def _outcome(op: BalanceOperation, account: TradingAccount) -> BalanceOperation:
    """A finished operation as a retry sees it: the same result, or the same refusal."""
    if op.status is OperationStatus.REJECTED:
        raise FailedPrecondition(
            "the trading server refused this operation", reason=op.rejection or "PLATFORM_REJECTED"
        )
    return _in_currency(op, account)


def _in_currency(op: BalanceOperation, account: TradingAccount) -> BalanceOperation:
    return replace(op, amount=in_currency(op.amount, account.currency_digits))
