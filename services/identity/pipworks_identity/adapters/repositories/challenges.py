"""Short-lived single-use secrets: MFA challenges, email verification and reset tokens.

Consuming is one conditional UPDATE, so a token works exactly once even when the same
one is presented concurrently.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import mfa_challenges, one_time_tokens
from pipworks_identity.domain.sessions import ClientInfo


class TokenPurpose(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret


class OneTimeTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def issue(
        self,
        *,
        token_hash: bytes,
        user_id: uuid.UUID,
        purpose: TokenPurpose,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Store a new token; earlier ones of the same purpose are dropped (superseded)."""
        await self._session.execute(
            sa.delete(one_time_tokens).where(
                one_time_tokens.c.user_id == user_id, one_time_tokens.c.purpose == purpose.value
            )
        )
        await self._session.execute(
            sa.insert(one_time_tokens).values(
                token_hash=token_hash,
                user_id=user_id,
                purpose=purpose.value,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def consume(
        self, token_hash: bytes, purpose: TokenPurpose, now: datetime
    ) -> uuid.UUID | None:
        """The token's user if it is live; it is spent by this call."""
        return await self._session.scalar(
            sa.update(one_time_tokens)
            .where(
                one_time_tokens.c.token_hash == token_hash,
                one_time_tokens.c.purpose == purpose.value,
                one_time_tokens.c.used_at.is_(None),
                one_time_tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(one_time_tokens.c.user_id)
        )


class MfaChallengeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        token_hash: bytes,
        user_id: uuid.UUID,
        client: ClientInfo,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        # A user has few challenges at a time: drop the finished ones while here.
        await self._session.execute(
            sa.delete(mfa_challenges).where(
                mfa_challenges.c.user_id == user_id,
                sa.or_(mfa_challenges.c.used_at.is_not(None), mfa_challenges.c.expires_at <= now),
            )
        )
        await self._session.execute(
            sa.insert(mfa_challenges).values(
                token_hash=token_hash,
                user_id=user_id,
                created_at=now,
                expires_at=expires_at,
                ip_address=client.ip_address,
                user_agent=client.user_agent,
                device_id=client.device_id,
            )
        )

    async def find_live(self, token_hash: bytes, now: datetime) -> uuid.UUID | None:
        """The user a live challenge belongs to."""
        return await self._session.scalar(
            sa.select(mfa_challenges.c.user_id).where(
                mfa_challenges.c.token_hash == token_hash,
                mfa_challenges.c.used_at.is_(None),
                mfa_challenges.c.expires_at > now,
            )
        )

    async def consume(self, token_hash: bytes, now: datetime) -> bool:
        used = await self._session.scalar(
            sa.update(mfa_challenges)
            .where(
                mfa_challenges.c.token_hash == token_hash,
                mfa_challenges.c.used_at.is_(None),
                mfa_challenges.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(mfa_challenges.c.user_id)
        )
        return used is not None

    async def discard_for_user(self, user_id: uuid.UUID) -> None:
        await self._session.execute(
            sa.delete(mfa_challenges).where(mfa_challenges.c.user_id == user_id)
        )
