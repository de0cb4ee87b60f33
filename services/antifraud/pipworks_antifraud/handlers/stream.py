"""The streaming use case: one incoming event → state update, scores, alerts, cases,
restrictions — all in the consumer's transaction, with the inbox row that makes a
redelivered event a no-op. Ids of everything an event causes are derived from the event
id, so replaying the same events raises the same alerts once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.events.v1 import antifraud_pb2
from pipworks_antifraud.adapters import bulk
from pipworks_antifraud.adapters.store import (
    EvidenceRepository,
    RuleRepository,
    rule_from_row,
)
from pipworks_antifraud.domain.engine import Decision, EngineConfig, RuleSet, process
from pipworks_antifraud.domain.geo import GeoResolver
from pipworks_antifraud.domain.rules import BUILTIN_RULES, compile_rule
from pipworks_antifraud.domain.state import ClientState
from pipworks_antifraud.handlers.normalize import to_fact
from pipworks_antifraud.metrics import ALERTS_RAISED
from pipworks_platform.consumer import InboundEvent
from pipworks_platform.db import UnitOfWork, UnitOfWorkFactory
from pipworks_platform.tracing import span_in_trace

log = structlog.get_logger(__name__)

LOCK_STRIPES = 1024
NAMESPACE = uuid.UUID("6f1d8a52-8f0e-4a8e-9d7c-3b1f2a9e5c10")
SEVERITY = {
    "LOW": antifraud_pb2.ANTIFRAUD_SEVERITY_LOW,
    "MEDIUM": antifraud_pb2.ANTIFRAUD_SEVERITY_MEDIUM,
    "HIGH": antifraud_pb2.ANTIFRAUD_SEVERITY_HIGH,
    "CRITICAL": antifraud_pb2.ANTIFRAUD_SEVERITY_CRITICAL,
}


def derived_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts))


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


class RuleBook:
    """The compiled current rules, reloaded when they change (here or on another replica)."""

    def __init__(self, uow: UnitOfWorkFactory, config: EngineConfig) -> None:
        self._uow = uow
        self._config = config
        self._ruleset: RuleSet | None = None
        self._seeded = False  # the built-in rules are added once, by the first load
        self._lock = asyncio.Lock()

    @property
    def config(self) -> EngineConfig:
        return self._config

    async def current(self) -> RuleSet:
        if self._ruleset is None:
            await self.reload()
        assert self._ruleset is not None
        return self._ruleset

    def invalidate(self) -> None:
        self._ruleset = None

    async def reload(self) -> None:
        async with self._lock:
            async with self._uow() as uow:
                repo = RuleRepository(uow.session)
                if not self._seeded:
                    if await repo.seed(BUILTIN_RULES, datetime.now(UTC)):
                        await uow.commit()
                    self._seeded = True
                rows = await repo.current()
            compiled = []
            for row in rows:
                try:
                    compiled.append(compile_rule(rule_from_row(row)))
                except Exception:  # a stored rule always compiled once; never stop the stream
                    log.exception("stored rule does not compile; skipped", rule_id=row.rule_id)
            ruleset = RuleSet(compiled, self._config)
            if self._ruleset is None or ruleset.version_key() != self._ruleset.version_key():
                log.info("rules loaded", rules=len(ruleset.rules))
                self._ruleset = ruleset

    async def refresh_forever(self, interval: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
            if stopping.is_set():
                return
            try:
                await self.reload()
            except Exception as exc:
                log.warning("rule refresh failed", error=repr(exc))


class StateCache:
    """Least-recently-used client states in front of PostgreSQL, bounded in entries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, ClientState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, user_id: str) -> ClientState | None:
        state = self._items.get(user_id)
        if state is not None:
            self._items.move_to_end(user_id)
        return state

    def put(self, state: ClientState) -> None:
        if self.capacity <= 0:
            return
        self._items[state.user_id] = state
        self._items.move_to_end(state.user_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def evict(self, user_id: str) -> None:
        self._items.pop(user_id, None)

    def clear(self) -> None:
        self._items.clear()


@dataclass
class Detector:
    rulebook: RuleBook
    geo: GeoResolver
    cache: StateCache
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    async def handle(self, event: InboundEvent, uow: UnitOfWork) -> None:
        """Apply one event: a batch of one (see :meth:`handle_batch`)."""
        await self.handle_batch([event], uow)

    async def handle_batch(self, events: Sequence[InboundEvent], uow: UnitOfWork) -> None:
        """Apply a batch of events in one transaction (the consumer claimed their inbox
        rows in it), in order, with one statement per table; commits here."""
        traced = [
            (fact, event.trace_context)
            for event in events
            if (fact := to_fact(event, self.geo)) is not None
        ]
        facts = [fact for fact, _ in traced]
        if not facts:
            await uow.commit()
            return
        ruleset = await self.rulebook.current()
        now = self.clock()
        users = sorted({fact.user_id for fact in facts})
        stripes = sorted({hash(user) % LOCK_STRIPES for user in users})
        async with contextlib.AsyncExitStack() as held:
            for stripe in stripes:
                await held.enter_async_context(self._locks[stripe])
            wanted = sorted({(k, v, f.user_id) for f in facts for k, v in f.keys.items()})
            counts, present = await bulk.shared_counts(uow.session, wanted, now)
            for fact in facts:
                for kind, key in fact.keys.items():
                    if (kind, key, fact.user_id) not in present:
                        present.add((kind, key, fact.user_id))
                        counts[(kind, key)] = counts.get((kind, key), 0) + 1
                    fact.shared[kind] = counts.get((kind, key), 0)
            states: dict[str, ClientState] = {}
            for user in users:
                cached = self.cache.get(user)
                if cached is not None:
                    states[user] = cached
            missing = [user for user in users if user not in states]
            if missing:
                loaded = await bulk.load_states(uow.session, missing)
                for user in missing:
                    states[user] = loaded.get(user) or ClientState(user_id=user)
            try:
                decisions: list[Decision] = []
                for fact, trace_context in traced:  # each event's work in its own trace
                    with span_in_trace(trace_context, "antifraud.evaluate"):
                        decisions.append(process(ruleset, states[fact.user_id], fact))
                await bulk.write(
                    uow.session, list(states.values()), [evidence_row(d) for d in decisions], now
                )
                for (_, trace_context), decision in zip(traced, decisions, strict=True):
                    if decision.hits:
                        with span_in_trace(trace_context, "antifraud.act"):
                            await self._act(decision, uow, now)
                await uow.commit()
            except BaseException:
                for user in users:
                    self.cache.evict(user)
                raise
            for state in states.values():
                self.cache.put(state)

    async def _act(self, decision: Decision, uow: UnitOfWork, now: datetime) -> None:
        """Alerts, cases and restrictions for the live hits outside their cooldown."""
        fact = decision.fact
        acting = [h for h in decision.hits if h.acts]
        if not acting:
            return
        user = uuid.UUID(fact.user_id)
        event_id = uuid.UUID(fact.event_id)
        evidence = EvidenceRepository(uow.session)
        case = await evidence.active_case(user, lock=True)
        case_id = case.case_id if case is not None else None
        if case_id is None and any("OPEN_CASE" in h.spec.actions for h in acting):
            case_id = derived_id(event_id, "case")
            if await evidence.open_case(case_id, user, now):
                uow.emit(
                    antifraud_pb2.AntifraudCaseOpened(
                        case_id=str(case_id), user_id=fact.user_id, opened_at=stamp(now)
                    ),
                    event_id=str(derived_id(case_id, "opened")),
                )
            else:  # opened meanwhile (staff, another replica) or by an earlier replay
                existing = await evidence.active_case(user)
                case_id = existing.case_id if existing is not None else None
        for hit in acting:
            spec = hit.spec
            alert_id = derived_id(event_id, spec.rule_id, spec.version)
            added = await evidence.add_alert(
                alert_id=alert_id,
                user_id=user,
                rule_id=spec.rule_id,
                rule_version=spec.version,
                severity=spec.severity,
                score=spec.score,
                reason=spec.reason,
                source_event_id=event_id,
                source_subject=fact.subject,
                case_id=case_id,
                values=hit.values,
                raised_at=now,
            )
            if added:
                uow.after_commit(ALERTS_RAISED.labels(spec.severity.lower(), spec.rule_id).inc)
                uow.emit(
                    antifraud_pb2.AntifraudAlertRaised(
                        alert_id=str(alert_id),
                        user_id=fact.user_id,
                        rule_id=spec.rule_id,
                        rule_version=spec.version,
                        severity=SEVERITY[spec.severity],
                        score=str(spec.score),
                        source_event_id=fact.event_id,
                        source_subject=fact.subject,
                        case_id=str(case_id) if case_id else "",
                        raised_at=stamp(now),
                    ),
                    event_id=str(derived_id(alert_id, "raised")),
                )
        await self._restrict(acting, evidence, uow, user, event_id, case_id, now)

    async def _restrict(
        self,
        acting: list[Any],
        evidence: EvidenceRepository,
        uow: UnitOfWork,
        user: uuid.UUID,
        event_id: uuid.UUID,
        case_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        restricting = [
            h
            for h in acting
            if set(h.spec.actions) & {"RESTRICT_WITHDRAWALS", "RESTRICT_TRADING", "RESTRICT_LOGIN"}
        ]
        if not restricting:
            return
        flags = {
            "trading": any("RESTRICT_TRADING" in h.spec.actions for h in restricting),
            "withdrawals": any("RESTRICT_WITHDRAWALS" in h.spec.actions for h in restricting),
            "login": any("RESTRICT_LOGIN" in h.spec.actions for h in restricting),
        }
        active = await evidence.active_restrictions(user, now)
        covered = {name: any(getattr(r, name) for r in active) for name in flags}
        if all(covered[name] or not wanted for name, wanted in flags.items()):
            return  # already blocked by an active restriction
        hours = [h.spec.restriction_hours for h in restricting]
        expires = None if 0 in hours else now + timedelta(hours=max(hours))
        first = restricting[0].spec
        restriction_id = derived_id(event_id, "restriction")
        row = await evidence.add_restriction(
            restriction_id=restriction_id,
            user_id=user,
            reason=first.reason,
            note=", ".join(f"{h.spec.rule_id}@{h.spec.version}" for h in restricting),
            case_id=case_id,
            rule_id=first.rule_id,
            created_by="system",
            created_at=now,
            expires_at=expires,
            **flags,
        )
        if row is not None:
            uow.emit(restricted_event(row), event_id=str(derived_id(restriction_id, "placed")))


def evidence_row(decision: Decision) -> dict[str, Any]:
    """The evaluated event as stored: compact facts for back-tests, scores, explanations."""
    fact = decision.fact
    return {
        "event_id": uuid.UUID(fact.event_id),
        "user_id": uuid.UUID(fact.user_id),
        "kind": fact.kind,
        "occurred_at": datetime.fromtimestamp(fact.at, UTC),
        "document": fact.to_document(),
        "score": decision.score,
        "shadow_score": decision.shadow_score,
        "hits": [
            {
                "rule": h.spec.rule_id,
                "version": h.spec.version,
                "mode": h.spec.mode,
                "suppressed": h.suppressed,
                "values": h.values,
            }
            for h in decision.hits
        ],
    }


def restricted_event(row: Any) -> antifraud_pb2.AntifraudClientRestricted:
    event = antifraud_pb2.AntifraudClientRestricted(
        user_id=str(row.user_id),
        trading=row.trading,
        withdrawals=row.withdrawals,
        login=row.login,
        case_id=str(row.case_id) if row.case_id else "",
        reason=row.reason,
        occurred_at=stamp(row.created_at),
        restriction_id=str(row.restriction_id),
    )
    if row.expires_at is not None:
        event.expires_at.CopyFrom(stamp(row.expires_at))
    return event


async def lift_and_announce(
    evidence: EvidenceRepository,
    uow: UnitOfWork,
    restriction_id: uuid.UUID,
    now: datetime,
    actor: str,
    reason: str,
) -> Any:
    """Lift the restriction and emit its AntifraudClientUnrestricted; the lifted row. The
    event allows again only what no other active restriction of the client still blocks,
    since consumers apply the flags as given."""
    lifted = await evidence.lift(restriction_id, now, actor, reason)
    others = [
        r
        for r in await evidence.active_restrictions(lifted.user_id, now)
        if r.restriction_id != lifted.restriction_id
    ]
    event = antifraud_pb2.AntifraudClientUnrestricted(
        user_id=str(lifted.user_id),
        trading=lifted.trading and not any(r.trading for r in others),
        withdrawals=lifted.withdrawals and not any(r.withdrawals for r in others),
        login=lifted.login and not any(r.login for r in others),
        case_id=str(lifted.case_id) if lifted.case_id else "",
        occurred_at=stamp(now),
        restriction_id=str(lifted.restriction_id),
        reason=reason,
    )
    uow.emit(event, event_id=str(derived_id(restriction_id, "lifted")))
    return lifted


class RestrictionExpiry:
    """Background task: lifts restrictions whose expiry has passed and says so on NATS,
    and drops evaluated events older than the retention period."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retention_days: int = 90,
    ) -> None:
        self._uow = uow
        self._interval = interval
        self._clock = clock
        self._retention = timedelta(days=retention_days)
        self._stopping = asyncio.Event()

    async def prune_once(self, batch: int = 10_000) -> int:
        async with self._uow() as uow:
            pruned = await EvidenceRepository(uow.session).prune_events(
                self._clock() - self._retention, batch
            )
            await uow.commit()
        return pruned

    async def run_once(self, batch: int = 200) -> int:
        now = self._clock()
        async with self._uow() as uow:
            evidence = EvidenceRepository(uow.session)
            rows = await evidence.lapsed(now, batch)
            for row in rows:
                await lift_and_announce(evidence, uow, row.restriction_id, now, "system", "EXPIRED")
            await uow.commit()
        return len(rows)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                while await self.run_once() > 0:
                    pass
                while await self.prune_once() > 0:
                    pass
            except Exception as exc:
                log.warning("restriction expiry failed; will retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def stop(self) -> None:
        self._stopping.set()
