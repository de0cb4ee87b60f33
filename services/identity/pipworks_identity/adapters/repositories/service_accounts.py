"""Service accounts: machine clients that authenticate with a client id and secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import service_accounts
from pipworks_identity.domain.roles import Role


@dataclass(frozen=True)
class ServiceAccountRecord:
    id: uuid.UUID
    client_id: str
    name: str
    roles: frozenset[Role]
    secret_hash: str

    @property
    def role_names(self) -> list[str]:
        return sorted(role.value for role in self.roles)


class ServiceAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, account: ServiceAccountRecord, *, created_by: str, now: datetime) -> bool:
        """Insert; False when the name is taken."""
        inserted = await self._session.scalar(
            pg_insert(service_accounts)
            .values(
                id=account.id,
                client_id=account.client_id,
                name=account.name,
                roles=account.role_names,
                secret_hash=account.secret_hash,
                created_at=now,
                created_by=created_by,
            )
            .on_conflict_do_nothing(index_elements=[service_accounts.c.name])
            .returning(service_accounts.c.id)
        )
        return inserted is not None

    async def by_client_id(self, client_id: str) -> ServiceAccountRecord | None:
        row = (
            await self._session.execute(
                sa.select(service_accounts).where(service_accounts.c.client_id == client_id)
            )
        ).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return ServiceAccountRecord(
            id=m["id"],
            client_id=m["client_id"],
            name=m["name"],
            roles=frozenset(Role(r) for r in m["roles"]),
            secret_hash=m["secret_hash"],
        )
