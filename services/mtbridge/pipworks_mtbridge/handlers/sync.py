"""Deal sync: mirror new deals of known accounts and publish them, exactly once, in order.

Each pass asks the platform for the deals since the server's cursor (minus a small
overlap, for deals stamped late), oldest first, and works through them in batches.
One transaction per batch inserts the deals into the mirror, writes an event to the
outbox for each deal the mirror did not hold yet, and moves the cursor. Publishing and
advancing the cursor are therefore one commit: a crash before it redoes the batch, a
crash after it resumes behind it, and the mirror's key drops every deal seen twice.
Event ids are derived from ``<server>:<ticket>``, so even a relay re-send is a
duplicate JetStream and consumers' inboxes recognise.

The cursor is a deal time from the platform's own clock, never the bridge's, so a clock
difference between the two cannot open a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from opentelemetry import trace
from opentelemetry.context import Context

from pipworks_mtbridge.adapters.repositories import (
    AccountRepository,
    CursorRepository,
    DealRepository,
    OperationRepository,
)
from pipworks_mtbridge.domain.accounts import TradingAccount
from pipworks_mtbridge.domain.deals import Deal, deal_event_id
from pipworks_mtbridge.handlers import events
from pipworks_mtbridge.handlers.context import Deps, TradingServer
from pipworks_mtbridge.metrics import DEALS_PUBLISHED

tracer = trace.get_tracer(__name__)
log = structlog.get_logger(__name__)

# Deals are asked for up to this far past the bridge's clock: the platform's clock rules.
LOOKAHEAD = timedelta(days=1)
# A server's first pass starts this long before its first account was opened.
FIRST_PASS_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class SyncPass:
    fetched: int
    published: int


async def sync_server(deps: Deps, server: TradingServer) -> SyncPass:
    """One pass over a server; raises PlatformUnavailable (the cursor stays put)."""
    async with deps.uow() as uow:
        cursor = await CursorRepository(uow.session).get(server.name)
        if cursor is None:
            first = await AccountRepository(uow.session).earliest_opening(server.name)
            if first is None:
                return SyncPass(0, 0)  # no account of ours on this server yet
            cursor = first - FIRST_PASS_MARGIN
    since = cursor - timedelta(seconds=deps.config.sync_overlap_seconds)
    found = await server.platform.deals(
        since=since, until=deps.clock() + LOOKAHEAD, group_mask=server.group_mask
    )
    if not found:
        return SyncPass(0, 0)
    newest = max(deal.time for deal in found)
    ours, fresh = await _unseen(deps, server, found)
    published = 0
    size = deps.config.sync_batch_size
    for start in range(0, len(fresh), size):
        batch = fresh[start : start + size]
        last = start + size >= len(fresh)
        cursor = newest if last else batch[-1].time
        published += await _apply_batch(deps, server, ours, batch, cursor)
    if not fresh:
        async with deps.uow() as uow:
            await CursorRepository(uow.session).save(server.name, newest, deps.clock())
            await uow.commit()
    if published:  # a line per pass that found something; an idle server stays quiet
        log.info("deals published", server=server.name, deals=published, fetched=len(found))
    return SyncPass(len(found), published)


async def _unseen(
    deps: Deps, server: TradingServer, found: list[Deal]
) -> tuple[dict[int, TradingAccount], list[Deal]]:
    """Our accounts among the deals' logins, and their deals the mirror does not hold yet,
    oldest first.

    Only a shortcut past the deals the overlap fetched again: the mirror's key is what
    guarantees that nothing is published twice.
    """
    async with deps.uow() as uow:
        ours = await AccountRepository(uow.session).on_server(
            server.name, {deal.login for deal in found}
        )
        candidates = sorted((d for d in found if d.login in ours), key=lambda d: d.order_key)
        known = await DealRepository(uow.session).known(server.name, [d.ticket for d in candidates])
    return ours, [deal for deal in candidates if deal.ticket not in known]


async def _apply_batch(
    deps: Deps,
    server: TradingServer,
    owners: Mapping[int, TradingAccount],
    batch: Sequence[Deal],
    cursor: datetime,
) -> int:
    """Mirror rows, events and the cursor of one batch, in one transaction.

    ``batch`` holds only deals of ``owners`` (accounts are never removed); the mirror's
    key still decides which deals are new.
    """
    async with deps.uow() as uow:
        session = uow.session
        owned = [(owners[d.login].user_id, d) for d in batch]
        new = await DealRepository(session).insert_new(server.name, owned)
        fresh = [deal for _, deal in owned if deal.ticket in new]
        operations = await OperationRepository(session).match_by_comment(
            server.name, [(d.login, d.comment) for d in fresh if d.is_money]
        )
        fresh = [deal for deal in fresh if deal.is_money or deal.is_trade]
        for deal in fresh:
            account = owners[deal.login]
            if deal.is_money:
                event = events.balance_changed(
                    server.name,
                    account.user_id,
                    account.currency,
                    deal,
                    operations.get((deal.login, deal.comment)),
                )
            else:
                event = events.deal_executed(server.name, account.user_id, account.currency, deal)
            # Each deal starts its own trace, which the event carries to every consumer.
            with tracer.start_as_current_span(
                "mtbridge deal synced",
                context=Context(),
                attributes={"mtbridge.server": server.name, "mtbridge.deal": deal.ticket},
            ):
                uow.emit(event, event_id=str(deal_event_id(server.name, deal.ticket)))
        await CursorRepository(session).save(server.name, cursor, deps.clock())
        await uow.commit()
    for deal in fresh:
        DEALS_PUBLISHED.labels(server.name, "balance" if deal.is_money else "trade").inc()
    return len(fresh)
