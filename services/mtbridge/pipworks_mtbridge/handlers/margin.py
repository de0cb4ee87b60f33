"""Margin monitoring: snapshot every known account, raise a margin call once per dip."""

from __future__ import annotations

from decimal import Decimal

from pipworks_mtbridge.adapters.repositories import AccountRepository, MarginStateRepository
from pipworks_mtbridge.domain.margin import evaluate
from pipworks_mtbridge.handlers import events
from pipworks_mtbridge.handlers.context import Deps, TradingServer
from pipworks_mtbridge.metrics import MARGIN_CALLS

SNAPSHOT_BATCH = 100


async def check_margins(deps: Deps, server: TradingServer) -> int:
    """One round over the server's accounts; returns how many margin calls it raised."""
    async with deps.uow() as uow:
        accounts = await AccountRepository(uow.session).on_server(server.name)
    logins = sorted(accounts)
    raised = 0
    for start in range(0, len(logins), SNAPSHOT_BATCH):
        batch = logins[start : start + SNAPSHOT_BATCH]
        states = await server.platform.account_states(batch)
        now = deps.clock()
        async with deps.uow() as uow:
            repo = MarginStateRepository(uow.session)
            await repo.lock_server(server.name)
            known = await repo.disarmed(server.name, batch)
            observed: dict[int, tuple[frozenset[Decimal], Decimal | None]] = {}
            for state in states:
                before = known.get(state.login, frozenset())
                decision = evaluate(deps.config.margin, before, state.level_at_risk)
                observed[state.login] = (decision.disarmed, state.level_at_risk)
                if decision.fired is not None:
                    uow.emit(events.margin_call(accounts[state.login], decision.fired, state, now))
                    raised += 1
            await repo.save(server.name, observed, now)
            await uow.commit()
    if raised:
        MARGIN_CALLS.labels(server.name).inc(raised)
    return raised
