"""Balance operations and their idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import balance_operations as ops
from pipworks_mtbridge.domain.balance import (
    BalanceOperation,
    OperationKind,
    OperationStatus,
    PaymentDetails,
)


@dataclass(frozen=True)
class OperationMatch:
    """The bridge operation behind a balance deal, as its event describes it."""

    id: str
    kind: OperationKind
    idempotency_key: str
    payment: PaymentDetails | None


class OperationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_if_absent(self, op: BalanceOperation) -> bool:
        """Record a pending operation; False when a twin with the same key was first."""
        result = await self._session.execute(
            pg_insert(ops)
            .values(
                id=op.id,
                server=op.server,
                login=op.login,
                kind=op.kind.value,
                amount=op.amount,
                currency=op.currency,
                idempotency_key=op.idempotency_key,
                comment=op.comment,
                status=op.status.value,
                created_at=op.created_at,
                payment_method=op.payment.method if op.payment else None,
                payment_instrument=op.payment.instrument_fingerprint if op.payment else None,
                payment_country=op.payment.country_code if op.payment else None,
            )
            .on_conflict_do_nothing(index_elements=["server", "login", "idempotency_key"])
            .returning(ops.c.id)
        )
        return result.first() is not None

    async def find(
        self, server: str, login: int, key: str, *, for_update: bool = False
    ) -> BalanceOperation | None:
        query = sa.select(ops).where(
            ops.c.server == server, ops.c.login == login, ops.c.idempotency_key == key
        )
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return _operation(row) if row else None

    async def complete(self, op_id: object, ticket: int, now: datetime) -> None:
        await self._session.execute(
            sa.update(ops)
            .where(ops.c.id == op_id)
            .values(status=OperationStatus.COMPLETED.value, deal_ticket=ticket, completed_at=now)
        )

    async def reject(self, op_id: object, reason: str, now: datetime) -> None:
        await self._session.execute(
            sa.update(ops)
            .where(ops.c.id == op_id)
            .values(status=OperationStatus.REJECTED.value, rejection=reason, completed_at=now)
        )

    async def match_by_comment(
        self, server: str, deals: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], OperationMatch]:
        """Bridge operations behind balance deals, by (login, comment).

        Matched on the comment rather than the ticket: the sync may see the deal before
        the operation that made it has recorded its ticket.
        """
        if not deals:
            return {}
        rows = await self._session.execute(
            sa.select(ops).where(
                ops.c.server == server,
                ops.c.login.in_(sorted({login for login, _ in deals})),
                ops.c.comment.in_(sorted({comment for _, comment in deals})),
            )
        )
        return {
            (row["login"], row["comment"]): OperationMatch(
                id=str(row["id"]),
                kind=OperationKind(row["kind"]),
                idempotency_key=row["idempotency_key"],
                payment=_payment(row),
            )
            for row in rows.mappings()
        }


def _operation(row: sa.RowMapping) -> BalanceOperation:
    return BalanceOperation(
        id=row["id"],
        server=row["server"],
        login=row["login"],
        kind=OperationKind(row["kind"]),
        amount=row["amount"],
        currency=row["currency"],
        idempotency_key=row["idempotency_key"],
        comment=row["comment"],
        status=OperationStatus(row["status"]),
        created_at=row["created_at"],
        deal_ticket=row["deal_ticket"],
        completed_at=row["completed_at"],
        rejection=row["rejection"],
        payment=_payment(row),
    )


def _payment(row: sa.RowMapping) -> PaymentDetails | None:
    if row["payment_method"] is None:
        return None
    return PaymentDetails(
        method=row["payment_method"],
        instrument_fingerprint=row["payment_instrument"] or "",
        country_code=row["payment_country"] or "",
    )
