"""Commission accrual from the bridge's events: deals, deposits (CPA), payout
confirmations, and account openings.

A batch of deals is applied in one transaction with a handful of set-based statements:
the deals and position openings are stored, every client's chain comes from the closure
table in one query, plans come from the in-memory cache, and the ledger rows go in with
one ``INSERT ... ON CONFLICT DO NOTHING`` keyed by (deal, partner, rule), so a
redelivered deal adds nothing. Each deal's rows are published in one
``IbCommissionAccrued`` event, under the deal's own trace.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import context as otel_context

from pipworks.events.v1 import ib_pb2, mtbridge_pb2
from pipworks_ib.adapters import store
from pipworks_ib.domain.engine import (
    ENTRY_IN,
    ENTRY_INOUT,
    Accrual,
    ChainLink,
    DealFact,
    Opening,
    Pricing,
    price_cpa,
    price_deal,
)
from pipworks_ib.domain.money import InvalidAmount, parse_decimal
from pipworks_ib.domain.plans import PlanVersion, in_force
from pipworks_ib.handlers.context import Deps
from pipworks_platform.db import UnitOfWork
from pipworks_platform.tracing import span_in_trace

log = structlog.get_logger(__name__)

PAYOUT_KEY_PREFIX = "ib-payout:"


class BadEvent(ValueError):
    """An event whose content can never be applied."""


def ledger_id() -> str:
    """A new, time-ordered row id (UUIDv7 layout: 48-bit milliseconds, then random bits),
    so inserts land at the right edge of the primary key. Uniqueness of (source, partner,
    rule) is the table's business."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _decimal(text: str, field: str, *, default: str | None = None) -> Decimal:
    if not text and default is not None:
        return Decimal(default)
    try:
        return parse_decimal(text)
    except InvalidAmount as exc:
        raise BadEvent(f"{field} {exc}") from None


def event_uuid(text: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadEvent(f"{field} is not a UUID") from None


def deal_fact(message: mtbridge_pb2.MtDealExecuted) -> DealFact:
    if not message.server or message.deal <= 0:
        raise BadEvent("server and deal are required")
    return DealFact(
        server=message.server,
        ticket=message.deal,
        login=message.login,
        client_user_id=str(event_uuid(message.user_id, "user_id")),
        position_id=message.position_id,
        entry=message.entry,
        symbol=message.symbol,
        volume=abs(_decimal(message.volume_lots, "volume_lots")),
        price=_decimal(message.price, "price", default="0"),
        commission=_decimal(message.commission, "commission", default="0"),
        profit=_decimal(message.profit, "profit", default="0"),
        swap=_decimal(message.swap, "swap", default="0"),
        executed_at=message.executed_at.ToDatetime(UTC),
        currency=message.currency.upper(),
    )


@dataclass(frozen=True)
class DealInput:
    """A deal and the trace context it arrived with."""

    deal: DealFact
    trace_context: otel_context.Context | None = None


def _hold_for(holds: Sequence[Mapping[str, Any]], at: datetime) -> uuid.UUID | None:
    for hold in holds:
        if hold["opened_at"] <= at and (hold["lifted_at"] is None or at < hold["lifted_at"]):
            return hold["id"]
    return None


def ledger_row(
    accrual: Accrual,
    *,
    source_key: str,
    plan: PlanVersion,
    client: str,
    hold_id: uuid.UUID | None,
    occurred_at: str,
    now: str,
    server: str = "",
    deal: int = 0,
    symbol: str = "",
) -> dict[str, Any]:
    """A ledger row ready for the database as JSON: ids, amounts and times as text
    (a deposit's or a period's row names no deal)."""
    return {
        "id": ledger_id(),
        "source_key": source_key,
        "partner_id": accrual.partner_id,
        "rule_id": accrual.rule_id,
        "entry_kind": "accrual",
        "level": accrual.level,
        "client_user_id": client,
        "server": server,
        "deal": deal,
        "symbol": symbol,
        "rule_kind": accrual.kind.value,
        "plan_id": plan.plan_id,
        "plan_version": plan.version,
        "base": str(accrual.base),
        "rate": str(accrual.rate),
        "amount": str(accrual.amount),
        "currency": plan.terms.currency,
        "hold_id": None if hold_id is None else str(hold_id),
        "reverses": None,
        "explanation": {**accrual.explanation, **({"held": True} if hold_id else {})},
        "occurred_at": occurred_at,
        "recorded_at": now,
    }


def accrual_message(row: Mapping[str, Any]) -> ib_pb2.IbAccrual:
    return ib_pb2.IbAccrual(
        accrual_id=row["id"],
        partner_id=row["partner_id"],
        level=row["level"],
        client_user_id=row["client_user_id"],
        server=row["server"],
        deal=row["deal"],
        rule_id=row["rule_id"],
        plan_version=row["plan_version"],
        amount=row["amount"],
        currency=row["currency"],
    )


def emit_accrued(
    uow: UnitOfWork,
    rows: Sequence[Mapping[str, Any]],
    written: set[str],
    now: datetime,
    trace_context: otel_context.Context | None = None,
) -> None:
    """Publish the rows actually written (a redelivery writes none) in one event."""
    fresh = [r for r in rows if r["id"] in written]
    if fresh:
        with span_in_trace(trace_context, "ib.commission.accrue"):
            uow.emit(
                ib_pb2.IbCommissionAccrued(
                    accruals=[accrual_message(r) for r in fresh], accrued_at=timestamp(now)
                )
            )


class PlanResolver:
    """The plan version in force for a chain at an instant (nearest partner with a plan,
    else the configured default)."""

    def __init__(self, versions: Mapping[str, list[PlanVersion]], default: str) -> None:
        self._versions = versions
        self._default = default

    def plan_id(self, chain: Sequence[ChainLink]) -> str | None:
        for link in chain:
            if link.plan_id:
                return link.plan_id
        return self._default or None

    def at(self, chain: Sequence[ChainLink], when: datetime) -> PlanVersion | None:
        plan_id = self.plan_id(chain)
        if plan_id is None:
            return None
        return in_force(self._versions.get(plan_id, []), when)


async def resolver_for(
    deps: Deps, uow: UnitOfWork, chains: Mapping[Any, tuple[list[ChainLink], dict[str, int]]]
) -> PlanResolver:
    revisions: dict[str, int] = {}
    default = deps.settings.ib_default_plan
    need_default = False
    for _chain, plans in chains.values():
        revisions.update(plans)
        if not plans:
            need_default = True
    if need_default and default and default not in revisions:
        revisions.update(await store.plan_revisions(uow.session, [default]))
    versions = await deps.plans.versions(uow.session, revisions) if revisions else {}
    return PlanResolver(versions, default)


async def process_deals(deps: Deps, uow: UnitOfWork, inputs: Sequence[DealInput]) -> int:
    """Store and price a batch of deals in the caller's transaction; the rows written."""
    if not inputs:
        return 0
    session = uow.session
    now = deps.clock()
    deals = [i.deal for i in inputs]
    new_deals = await store.save_client_deals(
        session,
        [
            {
                "server": d.server,
                "ticket": d.ticket,
                "client": uuid.UUID(d.client_user_id),
                "symbol": d.symbol,
                "entry": d.entry,
                "volume": d.volume,
                "result": d.profit + d.swap + d.commission,
                "currency": d.currency,
                "executed_at": d.executed_at,
            }
            for d in deals
        ],
    )
    # A deal seen before (the same deal under another event id) changes nothing.
    unseen: list[DealInput] = []
    for item in inputs:
        key = (item.deal.server, item.deal.ticket)
        if key in new_deals:
            new_deals.discard(key)
            unseen.append(item)
    inputs, deals = unseen, [i.deal for i in unseen]
    known = await store.openings(session, ((d.server, d.position_id) for d in deals))
    changed: dict[tuple[str, int], Opening] = {}
    to_price: list[tuple[DealInput, DealFact, Opening | None]] = []
    for item in inputs:
        deal = item.deal
        key = (deal.server, deal.position_id)
        opening = changed.get(key) or known.get(key)
        if deal.entry == ENTRY_IN:
            if opening is None:  # a second "in" (scaling in) keeps the first opening
                changed[key] = Opening(deal.executed_at, deal.volume, deal.commission)
            else:
                changed[key] = Opening(
                    opening.opened_at,
                    opening.volume + deal.volume,
                    opening.commission + deal.commission,
                )
            continue
        priced = deal
        if deal.entry == ENTRY_INOUT:
            closed = min(deal.volume, opening.volume) if opening is not None else deal.volume
            priced = replace(deal, volume=closed)
            changed[key] = Opening(deal.executed_at, deal.volume - closed, Decimal(0))
        to_price.append((item, priced, opening))
    await store.save_openings(session, changed)
    if not to_price:
        return 0
    chains = await store.chains(session, (uuid.UUID(d.client_user_id) for _, d, _ in to_price))
    resolver = await resolver_for(deps, uow, chains)
    holds = await store.open_holds(session, (uuid.UUID(d.client_user_id) for _, d, _ in to_price))
    now_text = now.isoformat()
    per_deal: list[tuple[DealInput, list[dict[str, Any]]]] = []
    facts: list[tuple[str, dict[str, Any]]] = []
    for item, deal, opening in to_price:
        client = uuid.UUID(deal.client_user_id)
        chain = chains.get(client, ([], {}))[0]
        plan = resolver.at(chain, deal.executed_at)
        if plan is None:
            continue
        pricing: Pricing = price_deal(plan, deal, chain, opening)
        if not pricing.accruals:
            continue
        hold_id = _hold_for(holds.get(client, []), deal.executed_at)
        executed_text = deal.executed_at.isoformat()
        rows = [
            ledger_row(
                accrual,
                source_key=deal.source_key,
                plan=plan,
                client=deal.client_user_id,
                server=deal.server,
                deal=deal.ticket,
                symbol=deal.symbol,
                hold_id=hold_id,
                occurred_at=executed_text,
                now=now_text,
            )
            for accrual in pricing.accruals
        ]
        per_deal.append((item, rows))
        facts.append((deal.source_key, pricing.facts))
    written = await store.append_ledger(session, [r for _, rows in per_deal for r in rows])
    await store.append_facts(session, facts, now)
    for item, rows in per_deal:
        emit_accrued(uow, rows, written, now, item.trace_context)
    return len(written)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def on_balance_changed(
    deps: Deps, uow: UnitOfWork, message: mtbridge_pb2.MtBalanceChanged
) -> None:
    """A payout confirmation marks the statement paid; a deposit may earn CPA."""
    session = uow.session
    if message.idempotency_key.startswith(PAYOUT_KEY_PREFIX):
        payout = message.idempotency_key.removeprefix(PAYOUT_KEY_PREFIX)
        try:
            payout_id = uuid.UUID(payout)
        except ValueError:
            log.warning("payout confirmation with a foreign key", key=message.idempotency_key)
            return
        executed = message.executed_at.ToDatetime(UTC)
        marked = await store.mark_paid(session, payout_id, executed)
        log.info("payout confirmed", payout_id=str(payout_id), marked=marked)
        return
    if message.operation_kind != mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT:
        return
    amount = _decimal(message.amount, "amount")
    if amount <= 0:
        return
    client = event_uuid(message.user_id, "user_id")
    executed = message.executed_at.ToDatetime(UTC)
    currency = message.currency.upper()
    await store.save_deposit(
        session, message.server, message.deal, client, amount, currency, executed
    )
    chains = await store.chains(session, [client])
    chain = chains.get(client, ([], {}))[0]
    if not chain:
        return
    resolver = await resolver_for(deps, uow, chains)
    plan = resolver.at(chain, executed)
    if plan is None:
        return
    pricing = price_cpa(plan, str(client), chain, amount, currency)
    if not pricing.accruals:
        return
    hold_id = _hold_for((await store.open_holds(session, [client])).get(client, []), executed)
    now = deps.clock()
    source_key = f"cpa:{client}"
    rows = [
        ledger_row(
            accrual,
            source_key=source_key,
            plan=plan,
            client=str(client),
            hold_id=hold_id,
            occurred_at=executed.isoformat(),
            now=now.isoformat(),
        )
        for accrual in pricing.accruals
    ]
    written = await store.append_ledger(session, rows)
    facts = {**pricing.facts, "deposit_deal": f"{message.server}:{message.deal}"}
    await store.append_facts(session, [(source_key, facts)], now)
    emit_accrued(uow, rows, written, now)


async def on_account_opened(uow: UnitOfWork, message: mtbridge_pb2.MtAccountOpened) -> None:
    await store.record_login(
        uow.session,
        message.server,
        message.login,
        event_uuid(message.user_id, "user_id"),
        message.currency.upper(),
        message.opened_at.ToDatetime(UTC),
    )
