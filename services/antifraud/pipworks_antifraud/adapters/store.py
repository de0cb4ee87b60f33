"""Repositories over the anti-fraud tables; each works inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_antifraud.adapters.tables import (
    alerts,
    case_comments,
    cases,
    client_state,
    evaluated_events,
    restrictions,
    rules,
)
from pipworks_antifraud.domain.rules import RuleSpec
from pipworks_antifraud.domain.state import ClientState


class StaleState(Exception):
    """Another writer changed the client's state since it was read; the event is retried."""


# -- rules ------------------------------------------------------------------------------


def rule_from_row(row: Any) -> RuleSpec:
    return RuleSpec(
        rule_id=row.rule_id,
        version=row.version,
        name=row.name,
        description=row.description,
        event_kinds=tuple(row.event_kinds),
        condition=row.condition,
        score=Decimal(row.score),
        severity=row.severity,
        actions=tuple(row.actions),
        mode=row.mode,
        reason=row.reason,
        restriction_hours=row.restriction_hours,
        cooldown_seconds=row.cooldown_seconds,
    )


def _rule_values(spec: RuleSpec) -> dict[str, Any]:
    """The rule's columns, as stored for one version."""
    return {
        "rule_id": spec.rule_id,
        "version": spec.version,
        "name": spec.name,
        "description": spec.description,
        "event_kinds": list(spec.event_kinds),
        "condition": spec.condition,
        "score": spec.score,
        "severity": spec.severity,
        "actions": list(spec.actions),
        "mode": spec.mode,
        "reason": spec.reason,
        "restriction_hours": spec.restriction_hours,
        "cooldown_seconds": spec.cooldown_seconds,
    }


class RuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> list[Any]:
        result = await self.session.execute(
            sa.select(rules).where(rules.c.is_current).order_by(rules.c.rule_id)
        )
        return list(result.all())

    async def get(self, rule_id: str, version: int = 0, *, lock: bool = False) -> Any | None:
        query = sa.select(rules).where(rules.c.rule_id == rule_id)
        query = (
            query.where(rules.c.version == version) if version else query.where(rules.c.is_current)
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).one_or_none()

    async def add_version(self, spec: RuleSpec, now: datetime, actor: str) -> Any:
        await self.session.execute(
            sa.update(rules)
            .where(rules.c.rule_id == spec.rule_id, rules.c.is_current)
            .values(is_current=False)
        )
        row = await self.session.execute(
            sa.insert(rules)
            .values(**_rule_values(spec), is_current=True, created_at=now, created_by=actor)
            .returning(rules)
        )
        return row.one()

    async def seed(self, specs: Sequence[RuleSpec], now: datetime) -> int:
        """Add each built-in rule that has never existed; returns how many were added."""
        if not specs:
            return 0
        result = await self.session.execute(
            pg_insert(rules)
            .values(
                [
                    {
                        **_rule_values(replace(spec, version=1)),
                        "is_current": True,
                        "created_at": now,
                        "created_by": "system",
                    }
                    for spec in specs
                ]
            )
            .on_conflict_do_nothing()
            .returning(rules.c.rule_id)
        )
        return len(result.all())


# -- client state ------------------------------------------------------------------------


class StateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self, user_id: str) -> ClientState:
        row = (
            await self.session.execute(
                sa.select(client_state.c.version, client_state.c.state).where(
                    client_state.c.user_id == uuid.UUID(user_id)
                )
            )
        ).one_or_none()
        if row is None:
            return ClientState(user_id=user_id)
        return ClientState.from_document(user_id, row.version, row.state)


# -- evaluated events, alerts, cases, restrictions ----------------------------------------


class EvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_alert(self, **values: Any) -> bool:
        result = await self.session.execute(
            pg_insert(alerts).values(**values).on_conflict_do_nothing().returning(alerts.c.alert_id)
        )
        return result.first() is not None

    async def active_case(self, user_id: uuid.UUID, *, lock: bool = False) -> Any | None:
        query = sa.select(cases).where(
            cases.c.user_id == user_id, cases.c.status.in_(("OPEN", "INVESTIGATING", "ESCALATED"))
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).one_or_none()

    async def open_case(self, case_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            pg_insert(cases)
            .values(
                case_id=case_id,
                user_id=user_id,
                status="OPEN",
                assignee="",
                opened_at=now,
                updated_at=now,
                resolution_note="",
            )
            .on_conflict_do_nothing()
            .returning(cases.c.case_id)
        )
        return result.first() is not None

    async def case(self, case_id: uuid.UUID, *, lock: bool = False) -> Any | None:
        query = sa.select(cases).where(cases.c.case_id == case_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).one_or_none()

    async def update_case(self, case_id: uuid.UUID, **values: Any) -> Any:
        result = await self.session.execute(
            sa.update(cases).where(cases.c.case_id == case_id).values(**values).returning(cases)
        )
        return result.one()

    async def case_totals(
        self, case_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, Decimal]]:
        if not case_ids:
            return {}
        result = await self.session.execute(
            sa.select(alerts.c.case_id, sa.func.count(), sa.func.sum(alerts.c.score))
            .where(alerts.c.case_id.in_(case_ids))
            .group_by(alerts.c.case_id)
        )
        return {row[0]: (int(row[1]), Decimal(row[2] or 0)) for row in result.all()}

    async def case_alerts(self, case_id: uuid.UUID) -> list[Any]:
        result = await self.session.execute(
            sa.select(alerts).where(alerts.c.case_id == case_id).order_by(alerts.c.seq)
        )
        return list(result.all())

    async def add_comment(self, case_id: uuid.UUID, author: str, body: str, now: datetime) -> Any:
        result = await self.session.execute(
            sa.insert(case_comments)
            .values(case_id=case_id, author=author, body=body, created_at=now)
            .returning(case_comments)
        )
        return result.one()

    async def comments(self, case_id: uuid.UUID) -> list[Any]:
        result = await self.session.execute(
            sa.select(case_comments)
            .where(case_comments.c.case_id == case_id)
            .order_by(case_comments.c.id)
        )
        return list(result.all())

    async def add_restriction(self, **values: Any) -> Any | None:
        """Place a restriction (not lifted); None when its id or key is taken."""
        result = await self.session.execute(
            pg_insert(restrictions)
            .values(lifted_by="", lift_reason="", **values)
            .on_conflict_do_nothing()
            .returning(restrictions)
        )
        return result.one_or_none()

    async def restriction(self, restriction_id: uuid.UUID, *, lock: bool = False) -> Any | None:
        query = sa.select(restrictions).where(restrictions.c.restriction_id == restriction_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).one_or_none()

    async def restriction_by_key(self, key: str) -> Any | None:
        return (
            await self.session.execute(
                sa.select(restrictions).where(restrictions.c.idempotency_key == key)
            )
        ).one_or_none()

    async def lift(self, restriction_id: uuid.UUID, now: datetime, actor: str, reason: str) -> Any:
        result = await self.session.execute(
            sa.update(restrictions)
            .where(restrictions.c.restriction_id == restriction_id)
            .values(lifted_at=now, lifted_by=actor, lift_reason=reason)
            .returning(restrictions)
        )
        return result.one()

    async def active_restrictions(self, user_id: uuid.UUID, now: datetime) -> list[Any]:
        result = await self.session.execute(
            sa.select(restrictions)
            .where(
                restrictions.c.user_id == user_id,
                restrictions.c.lifted_at.is_(None),
                sa.or_(restrictions.c.expires_at.is_(None), restrictions.c.expires_at > now),
            )
            .order_by(restrictions.c.seq.desc())
        )
        return list(result.all())

    async def case_restrictions(self, case_id: uuid.UUID) -> list[Any]:
        result = await self.session.execute(
            sa.select(restrictions)
            .where(restrictions.c.case_id == case_id, restrictions.c.lifted_at.is_(None))
            .with_for_update()
        )
        return list(result.all())

    async def prune_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` evaluated events older than ``before``; how many went."""
        doomed = (
            sa.select(evaluated_events.c.event_id)
            .where(evaluated_events.c.occurred_at < before)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self.session.execute(
            sa.delete(evaluated_events).where(evaluated_events.c.event_id.in_(doomed))
        )
        return int(result.rowcount or 0)

    async def lapsed(self, now: datetime, limit: int) -> list[Any]:
        result = await self.session.execute(
            sa.select(restrictions)
            .where(restrictions.c.lifted_at.is_(None), restrictions.c.expires_at <= now)
            .order_by(restrictions.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(result.all())
