"""Which margin-call thresholds each account has fired and not yet re-armed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_mtbridge.adapters.tables import margin_states


class MarginStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_server(self, server: str) -> None:
        """One margin round per server at a time, across replicas, until the commit."""
        await self._session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"mtbridge-margin:{server}")))
        )

    async def disarmed(self, server: str, logins: Sequence[int]) -> dict[int, frozenset[Decimal]]:
        if not logins:
            return {}
        rows = await self._session.execute(
            sa.select(margin_states.c.login, margin_states.c.disarmed)
            .where(margin_states.c.server == server, margin_states.c.login.in_(sorted(logins)))
            .with_for_update()
        )
        return {login: frozenset(Decimal(v) for v in values) for login, values in rows}

    async def save(
        self,
        server: str,
        observed: Mapping[int, tuple[frozenset[Decimal], Decimal | None]],
        now: datetime,
    ) -> None:
        """Upsert each login's ``(disarmed, margin_level)`` in one statement."""
        if not observed:
            return
        statement = pg_insert(margin_states).values(
            [
                {
                    "server": server,
                    "login": login,
                    "disarmed": sorted(disarmed),
                    "margin_level": margin_level,
                    "observed_at": now,
                }
                for login, (disarmed, margin_level) in observed.items()
            ]
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["server", "login"],
                set_={
                    "disarmed": statement.excluded.disarmed,
                    "margin_level": statement.excluded.margin_level,
                    "observed_at": statement.excluded.observed_at,
                },
            )
        )
