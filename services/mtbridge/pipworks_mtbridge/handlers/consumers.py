"""Events from other services, applied through the platform's inbox consumers.

Every effect is idempotent on its own key (one live account per user, one payout per
payout id, rights set to absolute values), so a redelivered event, or the same fact
published twice under different event ids, changes nothing the second time.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

import structlog

from pipworks.events.v1 import antifraud_pb2, ib_pb2, kyc_pb2
from pipworks_mtbridge import commands
from pipworks_mtbridge.adapters.repositories import AccountRepository
from pipworks_mtbridge.domain.accounts import Rights, restricted, unrestricted
from pipworks_mtbridge.domain.money import InvalidAmount, parse_amount
from pipworks_mtbridge.handlers import accounts, balance
from pipworks_mtbridge.handlers.context import Deps
from pipworks_platform.consumer import InboundEvent, PermanentError
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Consumers:
    """The bridge's event handlers, bound to its dependencies."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def on_kyc_approved(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = _expect(event, kyc_pb2.KycApplicationApproved)
        user_id = _uuid(message.user_id, "user_id")
        try:
            opened = await accounts.open_live_account(self._deps, user_id, message.currency)
        except (InvalidArgument, NotFound) as exc:  # configuration or event content
            raise PermanentError(f"cannot open the live account: {exc}") from exc
        if opened is not None:
            log.info(
                "live account for approved client",
                user_id=str(user_id),
                server=opened.account.server,
                login=opened.account.login,
            )

    async def on_restriction_changed(self, event: InboundEvent, uow: UnitOfWork) -> None:
        """Restrictions and their lifting share one consumer, so they apply in order."""
        message = event.message
        if isinstance(message, antifraud_pb2.AntifraudClientRestricted):
            change = restricted
        elif isinstance(message, antifraud_pb2.AntifraudClientUnrestricted):
            change = unrestricted
        else:
            raise PermanentError(f"unexpected event type {type(message).__name__}")
        user_id = _uuid(message.user_id, "user_id")
        async with self._deps.uow() as own:
            owned = await AccountRepository(own.session).of_user(user_id)

        def updated(rights: Rights) -> Rights:
            return change(rights, trading=message.trading, withdrawals=message.withdrawals)

        for account in owned:
            await accounts.change_rights(self._deps, account.server, account.login, updated)
        log.info(
            "client rights changed",
            user_id=str(user_id),
            restricted=change is restricted,
            accounts=len(owned),
        )

    async def on_payout_approved(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = _expect(event, ib_pb2.IbPayoutApproved)
        if not message.payout_id:
            raise PermanentError("payout_id is empty")
        try:
            amount = parse_amount(message.amount)
        except InvalidAmount as exc:
            raise PermanentError(f"amount {exc}") from None
        if amount <= 0:
            raise PermanentError("amount must be positive")
        ref = commands.AccountRef(message.server, message.login)
        try:
            await balance.pay_out(
                self._deps,
                message.payout_id,
                _uuid(message.user_id, "user_id"),
                ref,
                amount,
                message.currency,
            )
        except (InvalidArgument, NotFound, FailedPrecondition) as exc:
            raise PermanentError(f"payout {message.payout_id} cannot be paid: {exc}") from exc


def _expect(event: InboundEvent, kind: type[T]) -> T:
    if not isinstance(event.message, kind):
        raise PermanentError(f"unexpected event type {type(event.message).__name__}")
    return event.message


def _uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise PermanentError(f"{field} is not a UUID") from None
