"""Sessions and their refresh-token families."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import refresh_tokens, sessions
from pipworks_identity.domain.sessions import ClientInfo, FamilyState, PresentedToken


@dataclass(frozen=True)
class SessionRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    aal: int
    generation: int
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    client: ClientInfo
    revoked_at: datetime | None

    @property
    def family(self) -> FamilyState:
        return FamilyState(
            revoked=self.revoked_at is not None,
            expires_at=self.expires_at,
            generation=self.generation,
        )


@dataclass(frozen=True)
class StoredRefreshToken:
    session_id: uuid.UUID
    token: PresentedToken


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(
        self,
        *,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        aal: int,
        client: ClientInfo,
        now: datetime,
        expires_at: datetime,
        refresh_hash: bytes,
        refresh_expires_at: datetime,
    ) -> None:
        """A new session with the first refresh token of its family (generation 1)."""
        await self._session.execute(
            sa.insert(sessions).values(
                id=session_id,
                user_id=user_id,
                aal=aal,
                generation=1,
                created_at=now,
                last_used_at=now,
                expires_at=expires_at,
                ip_address=client.ip_address,
                user_agent=client.user_agent,
                device_id=client.device_id,
            )
        )
        await self._session.execute(
            sa.insert(refresh_tokens).values(
                token_hash=refresh_hash,
                session_id=session_id,
                generation=1,
                issued_at=now,
                expires_at=refresh_expires_at,
            )
        )

    async def find_refresh_token(self, token_hash: bytes) -> StoredRefreshToken | None:
        row = (
            await self._session.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return StoredRefreshToken(
            session_id=m["session_id"],
            token=PresentedToken(
                generation=m["generation"],
                spent=m["spent_at"] is not None,
                expires_at=m["expires_at"],
            ),
        )

    async def get(self, session_id: uuid.UUID, *, for_update: bool = False) -> SessionRecord | None:
        query = sa.select(sessions).where(sessions.c.id == session_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).one_or_none()
        return _record(row._mapping) if row is not None else None

    async def rotate(
        self,
        *,
        session_id: uuid.UUID,
        spent_hash: bytes,
        new_hash: bytes,
        generation: int,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Spend the presented token and issue generation ``generation`` of the family."""
        await self._session.execute(
            sa.update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == spent_hash)
            .values(spent_at=now)
        )
        await self._session.execute(
            sa.insert(refresh_tokens).values(
                token_hash=new_hash,
                session_id=session_id,
                generation=generation,
                issued_at=now,
                expires_at=expires_at,
            )
        )
        await self._session.execute(
            sa.update(sessions)
            .where(sessions.c.id == session_id)
            .values(generation=generation, last_used_at=now)
        )

    async def revoke(self, session_id: uuid.UUID, now: datetime, reason: str) -> bool:
        """End one session; its refresh tokens are dropped (they can never work again)."""
        revoked = await self._session.scalar(
            sa.update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(sessions.c.id)
        )
        await self._session.execute(
            sa.delete(refresh_tokens).where(refresh_tokens.c.session_id == session_id)
        )
        return revoked is not None

    async def revoke_all(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        keep: uuid.UUID | None = None,
    ) -> int:
        """End every live session of a user (but ``keep``); returns how many ended."""
        conditions = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(sessions.c.id != keep)
        ended = list(
            await self._session.scalars(
                sa.update(sessions)
                .where(*conditions)
                .values(revoked_at=now, revoked_reason=reason)
                .returning(sessions.c.id)
            )
        )
        if ended:
            await self._session.execute(
                sa.delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(ended))
            )
        return len(ended)

    async def list_active(
        self,
        user_id: uuid.UUID,
        now: datetime,
        *,
        idle_since: datetime,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[SessionRecord]:
        """Live sessions newest first; ``before`` is the keyset position of the last page.

        A session unused since ``idle_since`` has an expired refresh token: it is over.
        """
        query = sa.select(sessions).where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            sessions.c.last_used_at > idle_since,
        )
        if before is not None:
            query = query.where(sa.tuple_(sessions.c.created_at, sessions.c.id) < before)
        query = query.order_by(sessions.c.created_at.desc(), sessions.c.id.desc()).limit(limit)
        rows = await self._session.execute(query)
        return [_record(row._mapping) for row in rows]


def _record(m: sa.RowMapping) -> SessionRecord:
    return SessionRecord(
        id=m["id"],
        user_id=m["user_id"],
        aal=m["aal"],
        generation=m["generation"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        expires_at=m["expires_at"],
        client=ClientInfo(
            ip_address=m["ip_address"], user_agent=m["user_agent"], device_id=m["device_id"]
        ),
        revoked_at=m["revoked_at"],
    )
