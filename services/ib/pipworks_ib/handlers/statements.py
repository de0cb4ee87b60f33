"""Statements, payouts and revenue-share settlement."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pipworks.events.v1 import ib_pb2
from pipworks_ib.adapters import store
from pipworks_ib.domain.engine import price_revenue_share
from pipworks_ib.domain.money import to_text
from pipworks_ib.handlers.commissions import emit_accrued, ledger_row, resolver_for, timestamp
from pipworks_ib.handlers.context import Caller, Deps
from pipworks_ib.handlers.partners import audit
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound

Row = Any


def _check_period(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    if start is None or end is None:
        raise InvalidArgument.for_field("period_end" if start else "period_start", "is required")
    if start >= end:
        raise InvalidArgument.for_field("period_end", "must be after period_start")
    if end > now:
        raise FailedPrecondition("the period has not ended yet", reason="PERIOD_NOT_ENDED")
    return start, end


async def create_statement(
    deps: Deps, caller: Caller, partner_id: uuid.UUID, start: datetime | None, end: datetime | None
) -> Row:
    now = deps.clock()
    start, end = _check_period(start, end, now)
    async with deps.uow() as uow:
        if await store.partner(uow.session, partner_id) is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        existing = await store.statement_for_period(uow.session, partner_id, start, end)
        if existing:
            return existing[0]
        made = await store.create_statements(uow.session, start, end, now, caller.actor, partner_id)
        if not made:
            raise FailedPrecondition(
                "the partner has no payable commission before the period end",
                reason="NOTHING_TO_STATE",
            )
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.statement.created",
            f"partner:{partner_id}",
            statements=[str(s) for s in made],
            period_start=start.isoformat(),
            period_end=end.isoformat(),
        )
        rows = await store.statement_for_period(uow.session, partner_id, start, end)
        await uow.commit()
        return rows[0]


async def approve_statement(
    deps: Deps, caller: Caller, statement_id: uuid.UUID, server: str, login: int, key: str
) -> Row:
    async with deps.uow() as uow:
        row = await store.statement(uow.session, statement_id, lock=True)
        if row is None:
            raise NotFound("statement", str(statement_id), reason="STATEMENT_NOT_FOUND")
        if row["status"] != "draft":
            if row["approval_key"] == key:
                return row
            raise FailedPrecondition("the statement is already approved", reason="ALREADY_APPROVED")
        if row["total"] <= 0:
            raise FailedPrecondition("the statement has nothing to pay", reason="NOTHING_TO_PAY")
        partner = await store.partner(uow.session, row["partner_id"])
        account = await store.trading_login(uow.session, server, login)
        if account is None or partner is None or account["user_id"] != partner["user_id"]:
            raise FailedPrecondition(
                "the trading account is not the partner's", reason="ACCOUNT_NOT_PARTNERS"
            )
        if account["currency"] != row["currency"]:
            raise FailedPrecondition(
                "the account currency differs from the statement's", reason="CURRENCY_MISMATCH"
            )
        now = deps.clock()
        payout_id = uuid.uuid4()
        await store.approve_statement(
            uow.session, statement_id, payout_id, key, server, login, now, caller.actor
        )
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.statement.approved",
            f"statement:{statement_id}",
            payout_id=str(payout_id),
            amount=to_text(row["total"]),
            currency=row["currency"],
            server=server,
            login=login,
        )
        uow.emit(
            ib_pb2.IbPayoutApproved(
                payout_id=str(payout_id),
                partner_id=str(row["partner_id"]),
                user_id=str(partner["user_id"]),
                server=server,
                login=login,
                amount=to_text(row["total"]),
                currency=row["currency"],
                approved_at=timestamp(now),
            )
        )
        row = await store.statement(uow.session, statement_id)
        await uow.commit()
        return row


async def settle_revenue_share(
    deps: Deps, caller: Caller, start: datetime | None, end: datetime | None
) -> int:
    """Revenue share of each client's net loss (profit + swap + commission of its deals)
    in [start, end), priced with the plan in force at the period's last instant. A
    period is settled once; overlapping periods are refused."""
    now = deps.clock()
    start, end = _check_period(start, end, now)
    async with deps.uow() as uow:
        session = uow.session
        await session.execute(store.sa.text("LOCK TABLE revenue_settlements IN EXCLUSIVE MODE"))
        overlap = await store.fetch_one(
            session,
            "SELECT period_start FROM revenue_settlements"
            " WHERE period_start < :e AND :s < period_end",
            s=start,
            e=end,
        )
        if overlap is not None:
            raise FailedPrecondition("the period overlaps a settled one", reason="PERIOD_SETTLED")
        results = await store.fetch_all(
            session,
            "SELECT client_user_id, sum(result) AS result FROM client_deals"
            " WHERE executed_at >= :s AND executed_at < :e GROUP BY client_user_id",
            s=start,
            e=end,
        )
        chains = await store.chains(session, [r["client_user_id"] for r in results])
        resolver = await resolver_for(deps, uow, chains)
        at = end - timedelta(microseconds=1)
        period = f"{start.isoformat()}/{end.isoformat()}"
        rows: list[dict[str, Any]] = []
        facts: list[tuple[str, dict[str, Any]]] = []
        for result in results:
            client = result["client_user_id"]
            chain = chains.get(client, ([], {}))[0]
            plan = resolver.at(chain, at)
            if plan is None:
                continue
            pricing = price_revenue_share(plan, str(client), chain, result["result"], period)
            if pricing.accruals:
                facts.append((f"revshare:{client}:{period}", pricing.facts))
            rows += [
                ledger_row(
                    accrual,
                    source_key=f"revshare:{client}:{period}",
                    plan=plan,
                    client=str(client),
                    hold_id=None,
                    occurred_at=at.isoformat(),
                    now=now.isoformat(),
                )
                for accrual in pricing.accruals
            ]
        written = await store.append_ledger(session, rows)
        await store.append_facts(session, facts, now)
        await store.execute(
            session,
            "INSERT INTO revenue_settlements (period_start, period_end, settled_at, entries)"
            " VALUES (:s, :e, :now, :n)",
            s=start,
            e=end,
            now=now,
            n=len(written),
        )
        emit_accrued(uow, rows, written, now)
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.revenue_share.settled",
            f"period:{period}",
            entries=len(written),
        )
        await uow.commit()
        return len(written)
