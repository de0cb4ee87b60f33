"""Events from identity, the bridge and anti-fraud, applied through inbox consumers.

The bridge's account, deal and balance events share one durable consumer, so they apply
in the order the bridge published them (an account before its deals, an opening deal
before its closing deal); it applies a fetched batch in one transaction. Every effect is
also idempotent on its own key (ledger rows per deal, partner and rule; CPA once per
client; a payout marked paid once), so the same fact under another event id changes
nothing either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry.context import Context

from pipworks.events.v1 import antifraud_pb2, identity_pb2, mtbridge_pb2
from pipworks_ib.handlers import commissions, holds, partners
from pipworks_ib.handlers.commissions import BadEvent, DealInput
from pipworks_ib.handlers.context import Deps
from pipworks_platform.consumer import InboundEvent, PermanentError
from pipworks_platform.db import UnitOfWork

BRIDGE_SUBJECTS = [
    "pipworks.mtbridge.v1.account.opened",
    "pipworks.mtbridge.v1.deal.executed",
    "pipworks.mtbridge.v1.balance.changed",
]
IDENTITY_SUBJECTS = [
    "pipworks.identity.v1.user.registered",
    "pipworks.identity.v1.role.changed",
]
ANTIFRAUD_SUBJECTS = [
    "pipworks.antifraud.v1.client.restricted",
    "pipworks.antifraud.v1.client.unrestricted",
    "pipworks.antifraud.v1.case.resolved",
]


@contextlib.contextmanager
def _bad_event_is_permanent() -> Iterator[None]:
    """An event that can never apply goes to the dead-letter stream at once."""
    try:
        yield
    except BadEvent as exc:
        raise PermanentError(str(exc)) from exc


class Consumers:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def on_bridge_batch(self, events: Sequence[InboundEvent], uow: UnitOfWork) -> None:
        """A fetched batch, in one transaction: each deal under its producer's trace."""
        await self._apply_bridge([(event, event.trace_context) for event in events], uow)

    async def _apply_bridge(
        self, items: Sequence[tuple[InboundEvent, Context | None]], uow: UnitOfWork
    ) -> None:
        """Apply in order; runs of consecutive deals are priced together."""
        deals: list[DealInput] = []
        for event, ctx in items:
            message = event.message
            if isinstance(message, mtbridge_pb2.MtDealExecuted):
                deals.append(DealInput(commissions.deal_fact(message), ctx))
                continue
            await commissions.process_deals(self._deps, uow, deals)
            deals = []
            if isinstance(message, mtbridge_pb2.MtAccountOpened):
                await commissions.on_account_opened(uow, message)
            elif isinstance(message, mtbridge_pb2.MtBalanceChanged):
                await commissions.on_balance_changed(self._deps, uow, message)
        await commissions.process_deals(self._deps, uow, deals)

    async def on_bridge_event(self, event: InboundEvent, uow: UnitOfWork) -> None:
        with _bad_event_is_permanent():
            await self._apply_bridge([(event, event.trace_context)], uow)

    async def on_identity_event(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = event.message
        with _bad_event_is_permanent():
            if isinstance(message, identity_pb2.UserRegistered):
                await partners.on_user_registered(self._deps, uow, message)
            elif isinstance(message, identity_pb2.RoleChanged):
                await partners.on_role_changed(self._deps, uow, message)

    async def on_antifraud_event(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = event.message
        with _bad_event_is_permanent():
            if isinstance(message, antifraud_pb2.AntifraudClientRestricted):
                await holds.on_restricted(self._deps, uow, message, str(event.event_id))
            elif isinstance(message, antifraud_pb2.AntifraudClientUnrestricted):
                await holds.on_unrestricted(self._deps, uow, message)
            elif isinstance(message, antifraud_pb2.AntifraudCaseResolved):
                await holds.on_case_resolved(self._deps, uow, message)
