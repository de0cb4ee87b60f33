"""Staff use cases: rule admin and back-testing, alerts, the case workflow, restrictions and
the client risk view. Every change is written to the hash-chained audit log in the same
transaction; permission is checked by the method policy before anything is read."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pipworks.events.v1 import antifraud_pb2
from pipworks_antifraud.adapters.store import (
    EvidenceRepository,
    RuleRepository,
    StateRepository,
    rule_from_row,
)
from pipworks_antifraud.adapters.tables import alerts, cases, evaluated_events, restrictions
from pipworks_antifraud.domain.cases import RESOLUTIONS, check_transition, ensure_active
from pipworks_antifraud.domain.engine import Fact, RuleSet, SharedIndex, process
from pipworks_antifraud.domain.rules import RuleSpec, compile_rule
from pipworks_antifraud.domain.state import ClientState
from pipworks_antifraud.handlers.stream import (
    RuleBook,
    derived_id,
    lift_and_announce,
    restricted_event,
    stamp,
)
from pipworks_platform import page_tokens
from pipworks_platform.audit import AuditLogRepository, AuditRecord
from pipworks_platform.db import UnitOfWork, UnitOfWorkFactory
from pipworks_platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

MAX_BACKTEST_EVENTS = 500_000
BACKTEST_BATCH = 5_000


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_token: str


def _cursor(token: str, query: str, key: str = "seq", kind: type = int) -> Any:
    """The position a page token of ``query`` resumes after; None for the first page."""
    if not token:
        return None
    try:
        return kind(page_tokens.decode(token, query)[key])
    except (page_tokens.BadPageToken, KeyError, TypeError, ValueError):
        raise InvalidArgument.for_field(
            "page_token", "is not a page token of this query", reason="INVALID_PAGE_TOKEN"
        ) from None


def _page(rows: list[Any], page_size: int, query: str) -> Page:
    """The first ``page_size`` of ``rows`` (fetched one over, newest first by ``seq``)."""
    page = rows[:page_size]
    more = len(rows) > page_size
    return Page(page, page_tokens.encode({"seq": page[-1].seq}, query) if more else "")


async def _audit(
    uow: UnitOfWork, actor: str, action: str, subject: str, now: datetime, **details: Any
) -> None:
    await AuditLogRepository(uow.session).append(
        AuditRecord(actor=actor, action=action, subject=subject, details=details), now
    )


async def _active_case(evidence: EvidenceRepository, case_id: uuid.UUID) -> Any:
    """The case, locked for a change; NOT_FOUND, or FAILED_PRECONDITION once it is closed."""
    row = await evidence.case(case_id, lock=True)
    if row is None:
        raise NotFound("case", str(case_id), reason="CASE_NOT_FOUND")
    ensure_active(row.status)
    return row


class Staff:
    def __init__(self, uow: UnitOfWorkFactory, rulebook: RuleBook) -> None:
        self.uow = uow
        self.rulebook = rulebook

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # -- rules ---------------------------------------------------------------------------

    async def create_rule(self, actor: str, spec: RuleSpec) -> Any:
        spec = replace(spec, version=1, mode=spec.mode or "SHADOW")
        compile_rule(spec)
        now = self.now()
        await self.rulebook.current()  # built-in rules are seeded
        async with self.uow() as uow:
            repo = RuleRepository(uow.session)
            if await repo.get(spec.rule_id, lock=True) is not None or await repo.get(
                spec.rule_id, 1
            ):
                raise AlreadyExists(f"rule {spec.rule_id} exists", reason="RULE_EXISTS")
            row = await repo.add_version(spec, now, actor)
            await _audit(
                uow,
                actor,
                "rule.created",
                f"rule:{spec.rule_id}",
                now,
                version=1,
                condition=spec.condition,
                mode=spec.mode,
            )
            await uow.commit()
        self.rulebook.invalidate()
        return row

    async def update_rule(self, actor: str, spec: RuleSpec, expected_version: int) -> Any:
        await self.rulebook.current()  # built-in rules are seeded
        now = self.now()
        async with self.uow() as uow:
            repo = RuleRepository(uow.session)
            current = await repo.get(spec.rule_id, lock=True)
            if current is None:
                raise NotFound("rule", str(spec.rule_id), reason="RULE_NOT_FOUND")
            if expected_version and expected_version != current.version:
                raise FailedPrecondition(
                    f"rule {spec.rule_id} is at version {current.version}, not {expected_version}",
                    reason="RULE_VERSION_MISMATCH",
                )
            spec = replace(spec, version=current.version + 1, mode=spec.mode or current.mode)
            compile_rule(spec)
            row = await repo.add_version(spec, now, actor)
            await _audit(
                uow,
                actor,
                "rule.updated",
                f"rule:{spec.rule_id}",
                now,
                version=spec.version,
                condition=spec.condition,
                mode=spec.mode,
            )
            await uow.commit()
        self.rulebook.invalidate()
        return row

    async def set_rule_mode(self, actor: str, rule_id: str, mode: str) -> Any:
        await self.rulebook.current()  # built-in rules are seeded
        now = self.now()
        async with self.uow() as uow:
            repo = RuleRepository(uow.session)
            current = await repo.get(rule_id, lock=True)
            if current is None:
                raise NotFound("rule", str(rule_id), reason="RULE_NOT_FOUND")
            spec = rule_from_row(current)
            if spec.mode == mode:
                return current
            spec = spec.next_version(mode=mode)
            row = await repo.add_version(spec, now, actor)
            await _audit(
                uow,
                actor,
                "rule.mode_changed",
                f"rule:{rule_id}",
                now,
                version=spec.version,
                mode=mode,
            )
            await uow.commit()
        self.rulebook.invalidate()
        return row

    async def get_rule(self, rule_id: str, version: int) -> Any:
        await self.rulebook.current()  # built-in rules are seeded
        async with self.uow() as uow:
            row = await RuleRepository(uow.session).get(rule_id, version)
        if row is None:
            raise NotFound("rule", str(rule_id), reason="RULE_NOT_FOUND")
        return row

    async def list_rules(self, page_size: int, token: str) -> Page:
        await self.rulebook.current()  # built-in rules are seeded
        query = page_tokens.fingerprint("rules")
        after = _cursor(token, query, "id", str)
        async with self.uow() as uow:
            rows = await RuleRepository(uow.session).current()
        if after is not None:
            rows = [r for r in rows if r.rule_id > after]
        page = rows[:page_size]
        next_token = (
            page_tokens.encode({"id": page[-1].rule_id}, query) if len(rows) > page_size else ""
        )
        return Page(page, next_token)

    async def test_rule(self, spec: RuleSpec, days: int, max_hits: int) -> dict[str, Any]:
        compiled = compile_rule(replace(spec, mode="LIVE", version=max(spec.version, 1)))
        ruleset = RuleSet([compiled], self.rulebook.config)
        since = self.now() - timedelta(days=days)
        states: dict[str, ClientState] = {}
        shared = SharedIndex()
        evaluated, hit_count, flagged, hits = 0, 0, set(), []
        async with self.uow() as uow:
            last: tuple[datetime, uuid.UUID] | None = None
            while evaluated < MAX_BACKTEST_EVENTS:
                query = (
                    sa.select(
                        evaluated_events.c.event_id,
                        evaluated_events.c.user_id,
                        evaluated_events.c.occurred_at,
                        evaluated_events.c.document,
                    )
                    .where(evaluated_events.c.occurred_at >= since)
                    .order_by(evaluated_events.c.occurred_at, evaluated_events.c.event_id)
                    .limit(BACKTEST_BATCH)
                )
                if last is not None:
                    query = query.where(
                        sa.tuple_(evaluated_events.c.occurred_at, evaluated_events.c.event_id)
                        > sa.tuple_(sa.literal(last[0]), sa.literal(last[1]))
                    )
                rows = (await uow.session.execute(query)).all()
                if not rows:
                    break
                for row in rows:
                    user = str(row.user_id)
                    fact = Fact.from_document(str(row.event_id), user, row.document)
                    shared.observe(fact)
                    state = states.get(user) or states.setdefault(user, ClientState(user))
                    decision = process(ruleset, state, fact)
                    evaluated += 1
                    for hit in decision.hits:
                        if hit.suppressed:
                            continue
                        hit_count += 1
                        flagged.add(user)
                        if len(hits) < max_hits:
                            hits.append(
                                {
                                    "user_id": user,
                                    "event_id": str(row.event_id),
                                    "kind": fact.kind,
                                    "occurred_at": row.occurred_at,
                                    "values": hit.values,
                                }
                            )
                last = (rows[-1].occurred_at, rows[-1].event_id)
        return {
            "evaluated": evaluated,
            "hit_count": hit_count,
            "clients": len(flagged),
            "hits": hits,
        }

    # -- alerts ----------------------------------------------------------------------------

    async def list_alerts(
        self,
        *,
        user_id: uuid.UUID | None,
        rule_id: str,
        min_severity: int,
        case_id: uuid.UUID | None,
        page_size: int,
        token: str,
    ) -> Page:
        query_id = page_tokens.fingerprint("alerts", user_id, rule_id, min_severity, case_id)
        before = _cursor(token, query_id)
        severities = ["LOW", "MEDIUM", "HIGH", "CRITICAL"][max(min_severity - 1, 0) :]
        query = sa.select(alerts).where(alerts.c.severity.in_(severities))
        if user_id is not None:
            query = query.where(alerts.c.user_id == user_id)
        if rule_id:
            query = query.where(alerts.c.rule_id == rule_id)
        if case_id is not None:
            query = query.where(alerts.c.case_id == case_id)
        if before is not None:
            query = query.where(alerts.c.seq < before)
        async with self.uow() as uow:
            rows = list(
                await uow.session.execute(query.order_by(alerts.c.seq.desc()).limit(page_size + 1))
            )
        return _page(rows, page_size, query_id)

    # -- cases ------------------------------------------------------------------------------

    async def list_cases(
        self, *, user_id: uuid.UUID | None, status: str, assignee: str, page_size: int, token: str
    ) -> tuple[Page, dict[Any, Any]]:
        query_id = page_tokens.fingerprint("cases", user_id, status, assignee)
        before = _cursor(token, query_id)
        query = sa.select(cases)
        if user_id is not None:
            query = query.where(cases.c.user_id == user_id)
        if status:
            query = query.where(cases.c.status == status)
        if assignee:
            query = query.where(cases.c.assignee == assignee)
        if before is not None:
            query = query.where(cases.c.seq < before)
        async with self.uow() as uow:
            rows = list(
                await uow.session.execute(query.order_by(cases.c.seq.desc()).limit(page_size + 1))
            )
            page = _page(rows, page_size, query_id)
            totals = await EvidenceRepository(uow.session).case_totals(
                [r.case_id for r in page.rows]
            )
        return page, totals

    async def get_case(self, case_id: uuid.UUID) -> dict[str, Any]:
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            row = await evidence.case(case_id)
            if row is None:
                raise NotFound("case", str(case_id), reason="CASE_NOT_FOUND")
            return {
                "case": row,
                "totals": await evidence.case_totals([case_id]),
                "alerts": await evidence.case_alerts(case_id),
                "comments": await evidence.comments(case_id),
            }

    async def _change_case(
        self, actor: str, case_id: uuid.UUID, action: str, details: dict[str, Any], **values: Any
    ) -> Any:
        now = self.now()
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            row = await _active_case(evidence, case_id)
            if "status" in values:
                check_transition(row.status, values["status"])
            updated = await evidence.update_case(case_id, updated_at=now, **values)
            await _audit(uow, actor, action, f"case:{case_id}", now, **details)
            totals = await evidence.case_totals([case_id])
            await uow.commit()
        return updated, totals

    async def assign_case(self, actor: str, case_id: uuid.UUID, assignee: str) -> Any:
        return await self._change_case(
            actor, case_id, "case.assigned", {"assignee": assignee}, assignee=assignee
        )

    async def set_case_status(self, actor: str, case_id: uuid.UUID, status: str) -> Any:
        return await self._change_case(
            actor, case_id, "case.status_changed", {"status": status}, status=status
        )

    async def add_comment(self, actor: str, case_id: uuid.UUID, body: str) -> Any:
        now = self.now()
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            await _active_case(evidence, case_id)
            comment = await evidence.add_comment(case_id, actor, body, now)
            await evidence.update_case(case_id, updated_at=now)
            await _audit(
                uow, actor, "case.commented", f"case:{case_id}", now, comment_id=comment.id
            )
            await uow.commit()
        return comment

    async def resolve_case(
        self, actor: str, case_id: uuid.UUID, resolution: str, note: str
    ) -> tuple[Any, Any, Any]:
        now = self.now()
        status = RESOLUTIONS[resolution]
        restriction = None
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            row = await _active_case(evidence, case_id)
            updated = await evidence.update_case(
                case_id, status=status, updated_at=now, resolved_at=now, resolution_note=note
            )
            uow.emit(
                antifraud_pb2.AntifraudCaseResolved(
                    case_id=str(case_id),
                    user_id=str(row.user_id),
                    resolution=(
                        antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_CONFIRMED
                        if resolution == "CONFIRMED"
                        else antifraud_pb2.ANTIFRAUD_CASE_RESOLUTION_FALSE_POSITIVE
                    ),
                    resolved_at=stamp(now),
                ),
                event_id=str(derived_id(case_id, "resolved")),
            )
            if resolution == "CONFIRMED":
                restriction = await evidence.add_restriction(
                    restriction_id=derived_id(case_id, "confirmed"),
                    user_id=row.user_id,
                    trading=True,
                    withdrawals=True,
                    login=False,
                    reason="CASE_CONFIRMED",
                    note=note,
                    case_id=case_id,
                    rule_id="",
                    created_by=actor,
                    created_at=now,
                    expires_at=None,
                )
                if restriction is not None:
                    uow.emit(
                        restricted_event(restriction),
                        event_id=str(derived_id(restriction.restriction_id, "placed")),
                    )
            else:
                for placed in await evidence.case_restrictions(case_id):
                    await lift_and_announce(
                        evidence, uow, placed.restriction_id, now, actor, "CASE_FALSE_POSITIVE"
                    )
            await _audit(
                uow,
                actor,
                "case.resolved",
                f"case:{case_id}",
                now,
                resolution=resolution,
                note_length=len(note),
            )
            totals = await evidence.case_totals([case_id])
            await uow.commit()
        return updated, totals, restriction

    async def export_case(self, actor: str, case_id: uuid.UUID) -> list[tuple[str, str, bytes]]:
        now = self.now()
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            row = await evidence.case(case_id)
            if row is None:
                raise NotFound("case", str(case_id), reason="CASE_NOT_FOUND")
            case_alerts = await evidence.case_alerts(case_id)
            comments = await evidence.comments(case_id)
            events = (
                await uow.session.execute(
                    sa.select(evaluated_events)
                    .where(
                        evaluated_events.c.event_id.in_([a.source_event_id for a in case_alerts])
                    )
                    .order_by(evaluated_events.c.occurred_at)
                )
            ).all()
            await _audit(uow, actor, "case.exported", f"case:{case_id}", now)
            await uow.commit()
        report = {
            "report_type": "SUSPICIOUS_ACTIVITY",
            "generated_at": now.isoformat(),
            "generated_by": actor,
            "case": {
                "case_id": str(row.case_id),
                "subject_user_id": str(row.user_id),
                "status": row.status,
                "assignee": row.assignee,
                "opened_at": row.opened_at.isoformat(),
                "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
                "resolution_note": row.resolution_note,
            },
            "total_score": str(sum((Decimal(a.score) for a in case_alerts), Decimal(0))),
            "alerts": [
                {
                    "alert_id": str(a.alert_id),
                    "rule_id": a.rule_id,
                    "rule_version": a.rule_version,
                    "reason": a.reason,
                    "severity": a.severity,
                    "score": str(a.score),
                    "raised_at": a.raised_at.isoformat(),
                    "source_event_id": str(a.source_event_id),
                    "values": a.values,
                }
                for a in case_alerts
            ],
            "activity": [
                {
                    "event_id": str(e.event_id),
                    "kind": e.kind,
                    "occurred_at": e.occurred_at.isoformat(),
                    "details": e.document.get("f", {}),
                }
                for e in events
            ],
            "narrative": [
                {"author": c.author, "at": c.created_at.isoformat(), "text": c.body}
                for c in comments
            ],
        }
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "record",
                "id",
                "time",
                "rule_or_kind",
                "reason",
                "severity",
                "score",
                "amount",
                "currency",
                "details",
            ]
        )
        for a in case_alerts:
            writer.writerow(
                [
                    "alert",
                    a.alert_id,
                    a.raised_at.isoformat(),
                    a.rule_id,
                    a.reason,
                    a.severity,
                    a.score,
                    "",
                    "",
                    json.dumps(a.values, sort_keys=True),
                ]
            )
        for e in events:
            fields = e.document.get("f", {})
            writer.writerow(
                [
                    "event",
                    e.event_id,
                    e.occurred_at.isoformat(),
                    e.kind,
                    "",
                    "",
                    "",
                    fields.get("amount", ""),
                    fields.get("currency", ""),
                    json.dumps(fields, sort_keys=True),
                ]
            )
        stem = f"case-{row.case_id}"
        return [
            (
                f"{stem}.json",
                "application/json",
                json.dumps(report, indent=2, sort_keys=True).encode(),
            ),
            (f"{stem}.csv", "text/csv", buffer.getvalue().encode()),
        ]

    # -- restrictions -------------------------------------------------------------------

    async def create_restriction(
        self,
        actor: str,
        *,
        user_id: uuid.UUID,
        trading: bool,
        withdrawals: bool,
        login: bool,
        reason: str,
        note: str,
        duration_hours: int,
        idempotency_key: str,
    ) -> Any:
        now = self.now()
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            key = f"{actor}:{idempotency_key}" if idempotency_key else None
            if key is not None:
                existing = await evidence.restriction_by_key(key)
                if existing is not None:
                    return existing
            restriction_id = derived_id("manual", key) if key else uuid.uuid4()
            row = await evidence.add_restriction(
                restriction_id=restriction_id,
                user_id=user_id,
                trading=trading,
                withdrawals=withdrawals,
                login=login,
                reason=reason,
                note=note,
                case_id=None,
                rule_id="",
                created_by=actor,
                created_at=now,
                expires_at=now + timedelta(hours=duration_hours) if duration_hours else None,
                idempotency_key=key,
            )
            if row is None:  # a concurrent request with the same key won
                await uow.rollback()
                existing = await evidence.restriction_by_key(key or "")
                if existing is None:
                    raise AlreadyExists("the restriction exists", reason="RESTRICTION_EXISTS")
                return existing
            uow.emit(restricted_event(row), event_id=str(derived_id(restriction_id, "placed")))
            await _audit(
                uow,
                actor,
                "restriction.created",
                f"user:{user_id}",
                now,
                restriction_id=str(restriction_id),
                trading=trading,
                withdrawals=withdrawals,
                login=login,
                reason=reason,
                duration_hours=duration_hours,
            )
            await uow.commit()
        return row

    async def lift_restriction(self, actor: str, restriction_id: uuid.UUID, reason: str) -> Any:
        now = self.now()
        async with self.uow() as uow:
            evidence = EvidenceRepository(uow.session)
            row = await evidence.restriction(restriction_id, lock=True)
            if row is None:
                raise NotFound("restriction", str(restriction_id), reason="RESTRICTION_NOT_FOUND")
            if row.lifted_at is not None:
                raise FailedPrecondition(
                    "the restriction was already lifted", reason="RESTRICTION_NOT_ACTIVE"
                )
            lifted = await lift_and_announce(evidence, uow, restriction_id, now, actor, reason)
            await _audit(
                uow,
                actor,
                "restriction.lifted",
                f"user:{row.user_id}",
                now,
                restriction_id=str(restriction_id),
                reason=reason,
            )
            await uow.commit()
        return lifted

    async def list_restrictions(
        self, *, user_id: uuid.UUID | None, active_only: bool, page_size: int, token: str
    ) -> Page:
        query_id = page_tokens.fingerprint("restrictions", user_id, active_only)
        before = _cursor(token, query_id)
        query = sa.select(restrictions)
        if user_id is not None:
            query = query.where(restrictions.c.user_id == user_id)
        if active_only:
            query = query.where(
                restrictions.c.lifted_at.is_(None),
                sa.or_(restrictions.c.expires_at.is_(None), restrictions.c.expires_at > self.now()),
            )
        if before is not None:
            query = query.where(restrictions.c.seq < before)
        async with self.uow() as uow:
            rows = list(
                await uow.session.execute(
                    query.order_by(restrictions.c.seq.desc()).limit(page_size + 1)
                )
            )
        return _page(rows, page_size, query_id)

    # -- the client risk view ---------------------------------------------------------------

    async def client_risk(self, user_id: uuid.UUID, history_size: int) -> dict[str, Any]:
        now = self.now()
        async with self.uow() as uow:
            session = uow.session
            history = (
                await session.execute(
                    sa.select(evaluated_events)
                    .where(
                        evaluated_events.c.user_id == user_id,
                        sa.or_(evaluated_events.c.score > 0, evaluated_events.c.shadow_score > 0),
                    )
                    .order_by(evaluated_events.c.occurred_at.desc())
                    .limit(history_size)
                )
            ).all()
            score_30d = await session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(evaluated_events.c.score), 0)).where(
                    evaluated_events.c.user_id == user_id,
                    evaluated_events.c.occurred_at >= now - timedelta(days=30),
                )
            )
            open_alerts = (
                await session.execute(
                    sa.select(alerts)
                    .outerjoin(cases, cases.c.case_id == alerts.c.case_id)
                    .where(
                        alerts.c.user_id == user_id,
                        sa.or_(
                            alerts.c.case_id.is_(None),
                            cases.c.status.in_(("OPEN", "INVESTIGATING", "ESCALATED")),
                        ),
                    )
                    .order_by(alerts.c.seq.desc())
                    .limit(100)
                )
            ).all()
            active = await EvidenceRepository(session).active_restrictions(user_id, now)
            state = await StateRepository(session).load(str(user_id))
        ruleset = await self.rulebook.current()
        aggregates = describe_state(state, ruleset, now.timestamp())
        return {
            "history": history,
            "score_30d": Decimal(score_30d),
            "open_alerts": open_alerts,
            "restrictions": active,
            "aggregates": aggregates,
        }


def describe_state(state: ClientState, ruleset: RuleSet, now: float) -> dict[str, str]:
    """The client's profile and the current value of every aggregate the rules read."""
    out = {
        "kyc_country": state.kyc_country,
        "registered_country": state.registered_country,
        "risk_rating": state.risk_rating,
        "accounts": str(state.accounts),
        "login_countries": " ".join(state.countries),
        "state_version": str(state.version),
    }
    for plan in ruleset.plans.values():
        ref = plan.ref
        key = plan.series_id
        if ref.function == "distinct":
            dseries = state.distinct.get(key)
            out[ref.render()] = str(dseries.distinct(now, ref.window_seconds) if dseries else 0)
        else:
            series = state.series.get(key)
            count, total = series.totals(now, ref.window_seconds) if series else (0, Decimal(0))
            out[ref.render()] = str(count if ref.function == "count" else total)
    for metric in ("volume", "deposits", "trades"):
        today, history = state.day_history(now, metric, ruleset.config.baseline_days)
        out[f"today({metric})"] = str(today)
        out[f"history_days({metric})"] = str(len(history))
    return out
