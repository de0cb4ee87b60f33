"""What the IB ledger must hold, recomputed from the trading server's own deal history
(and ``flatten``, which brings that history to an end).

The deals are read from the simulator over the MT5 Web API (the bridge's client library,
its own manager session), not from any Pipworks database, and priced here with the plan
of ``_faults_setup`` written out as plain loops: a disagreement with the service's engine
points at one of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from pipworks_devstack.local_suite import LocalSuite
from pipworks_mtbridge.mt5.client import Mt5Client
from pipworks_mtbridge.mt5.records import DealAction, DealEntry, Mt5Deal
from tests.e2e.broker import (
    COMMISSION_SHARE,
    LEVEL_PERCENTS,
    PER_LOT_RULES,
    SERVER,
    SYMBOL_GROUPS,
)

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MANAGER_LOGIN = 1000

# (source key, partner id, rule id) -> amount
Rows = dict[tuple[str, str, str], Decimal]


async def flatten(suite: LocalSuite, logins: Sequence[int]) -> None:
    """Close every open position of ``logins``, so the server trades no more: while
    positions are open its price ticks keep stopping accounts out."""
    async with Mt5Client(suite.sim_url, MANAGER_LOGIN, _password(suite)) as client:
        while positions := await client.get_positions(logins=logins):
            for position in positions:
                with contextlib.suppress(RuntimeError):  # stopped out meanwhile
                    await asyncio.to_thread(
                        suite.sim_control, "POST", f"/sim/positions/{position.position_id}/close"
                    )


async def server_deals(suite: LocalSuite, logins: Sequence[int]) -> list[Mt5Deal]:
    """Every trade deal (buy/sell) of ``logins`` on the simulated server."""
    async with Mt5Client(suite.sim_url, MANAGER_LOGIN, _password(suite)) as client:
        deals = await client.get_deals(
            logins=logins, since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime.now(UTC)
        )
    return [d for d in deals if d.action in (DealAction.BUY, DealAction.SELL)]


def _password(suite: LocalSuite) -> str:
    assert suite.secrets is not None, "the suite has not started"
    return suite.secrets.mt5sim_password


def _in_group(symbol: str, group: str) -> bool:
    return any(fnmatch.fnmatchcase(symbol, pattern) for pattern in SYMBOL_GROUPS[group])


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def expected_rows(deals: Iterable[Mt5Deal], chain: Sequence[str]) -> Rows:
    """The ledger rows the plan gives ``chain`` (level 1 first) for these deals.

    Deal rules pay on the closing deal, for the volume closed: per lot by symbol group,
    and a share of the client's commission (the close's plus the opening's, pro rata of
    the volume closed). Each level takes its percent of each rule's pool; every row is
    rounded once, half-even to the cent, and zero rows are not written.
    """
    deals = list(deals)
    openings = {d.position_id: d for d in deals if d.entry == DealEntry.IN}
    rows: Rows = {}
    for deal in deals:
        assert deal.entry != DealEntry.INOUT, "the simulator does not reverse positions"
        if deal.entry not in (DealEntry.OUT, DealEntry.OUT_BY):
            continue
        opening = openings[deal.position_id]
        pools: dict[str, Decimal] = {}
        for rule_id, (group, rate) in PER_LOT_RULES.items():
            if _in_group(deal.symbol, group):
                pools[rule_id] = deal.volume_lots * rate
        portion = min(Decimal(1), deal.volume_lots / opening.volume_lots)
        commission = abs(deal.commission) + abs(opening.commission) * portion
        pools[COMMISSION_SHARE[0]] = commission * COMMISSION_SHARE[1] / HUNDRED
        for rule_id, pool in pools.items():
            for partner, percent in zip(chain, LEVEL_PERCENTS, strict=True):
                amount = _cents(pool * percent / HUNDRED)
                if amount:
                    rows[(f"{SERVER}:{deal.ticket}", partner, rule_id)] = amount
    return rows


def totals(rows: Rows) -> dict[str, Decimal]:
    by_partner: dict[str, Decimal] = defaultdict(Decimal)
    for (_, partner, _), amount in rows.items():
        by_partner[partner] += amount
    return dict(by_partner)
