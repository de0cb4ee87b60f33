"""Unit of work: one database transaction, with the events it emits.

Events are written to the outbox inside the same transaction as the state change
(no dual write). Before the outbox insert the transaction takes a transaction-scoped
advisory lock, so outbox ids are allocated in commit order: the relay can then publish
strictly by id and never sees a lower id commit after a higher one. The lock is held
only from the insert to the commit, which bounds event-emitting transactions of one
service to roughly one per commit latency (about 500-650/s on the benchmark machine;
see ``make bench``): bulk work should emit many events from one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pipworks_platform.db.tables import outbox
from pipworks_platform.events import OutgoingEvent, build_outgoing

tracer = trace.get_tracer(__name__)

# Arbitrary constant: "PWOUTBOX" as a signed 64-bit key. One outbox per database.
OUTBOX_LOCK_KEY = 0x50574F5554424F58


def outbox_channel(service: str) -> str:
    """The LISTEN/NOTIFY channel a service's relay wakes on."""
    return f"pipworks_outbox_{service}"


class UnitOfWork:
    """``async with uow: ...; await uow.commit()`` — leaving without commit rolls back."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, service: str) -> None:
        self._sessions = sessions
        self._service = service
        self._channel = outbox_channel(service)
        self._session: AsyncSession | None = None
        self._pending: list[OutgoingEvent] = []
        self._after_commit: list[Callable[[], None]] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._pending = []
        self._after_commit = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        self._pending = []
        self._after_commit = []
        if session is not None:
            await session.rollback()
            await session.close()

    def emit(self, event: Message, *, event_id: str | None = None) -> OutgoingEvent:
        """Queue an event (a ``pipworks.events.v1`` message) to commit with this transaction."""
        outgoing = build_outgoing(event, event_id=event_id)
        self._pending.append(outgoing)
        return outgoing

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction commits (metrics of what it did);
        dropped if it rolls back."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        """Write the queued events to the outbox and commit, in a ``<service> commit`` span
        (for a consumer, the commit of the event's effects, inside the event's trace)."""
        with tracer.start_as_current_span(
            f"{self._service} commit",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "pipworks.outbox.events": len(self._pending)},
        ):
            await self._commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def _commit(self) -> None:
        session = self.session
        if self._pending:
            rows = [e.as_row() for e in self._pending]
            await session.flush()
            # One round trip takes the lock and queues the wake-up (NOTIFY is delivered
            # at commit), so the lock is held for the insert and the commit only.
            await session.execute(
                sa.select(
                    sa.func.pg_advisory_xact_lock(OUTBOX_LOCK_KEY),
                    sa.func.pg_notify(self._channel, ""),
                )
            )
            await session.execute(sa.insert(outbox), rows)
        await session.commit()
        self._pending = []

    async def rollback(self) -> None:
        self._pending = []
        self._after_commit = []
        await self.session.rollback()


class UnitOfWorkFactory:
    """Makes a fresh :class:`UnitOfWork` per use case; handlers receive this."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, service: str) -> None:
        self._sessions = sessions
        self.service = service

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, service=self.service)
