"""Users: accounts, credentials, TOTP state and the failed-attempt counter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_identity.adapters.tables import users
from pipworks_identity.domain.roles import Role, UserKind
from pipworks_identity.domain.users import User


@dataclass(frozen=True)
class UserRecord:
    """A user with the credential material only use cases that check credentials need."""

    user: User
    password_hash: str
    totp_secret: bytes | None
    totp_pending_secret: bytes | None
    totp_last_used_step: int | None
    lockouts: int


@dataclass(frozen=True)
class NewUser:
    user: User
    password_hash: str
    phone_encrypted: bytes | None = None
    referral_code: str | None = None


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, new: NewUser) -> bool:
        """Insert; False when the email is already taken (nothing is written then)."""
        user = new.user
        inserted = await self._session.scalar(
            pg_insert(users)
            .values(
                id=user.id,
                email=user.email,
                kind=user.kind.value,
                roles=user.role_names,
                country_code=user.country_code,
                phone_encrypted=new.phone_encrypted,
                referral_code=new.referral_code,
                password_hash=new.password_hash,
                password_changed_at=user.created_at,
                email_verified_at=user.email_verified_at,
                created_at=user.created_at,
                updated_at=user.created_at,
            )
            .on_conflict_do_nothing(index_elements=[users.c.email])
            .returning(users.c.id)
        )
        return inserted is not None

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> UserRecord | None:
        query = sa.select(users).where(users.c.id == user_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).one_or_none()
        return _record(row) if row is not None else None

    async def by_email(self, email: str) -> UserRecord | None:
        row = (
            await self._session.execute(sa.select(users).where(users.c.email == email))
        ).one_or_none()
        return _record(row) if row is not None else None

    async def exists(self, email: str) -> bool:
        found = await self._session.scalar(sa.select(users.c.id).where(users.c.email == email))
        return found is not None

    # -- failed attempts and lockout -------------------------------------------------

    async def reserve_attempt(
        self, user_id: uuid.UUID, now: datetime, threshold: int
    ) -> int | None:
        """Count an attempt *before* checking the credential; None if none may be made.

        One atomic statement: of any number of concurrent attempts at most ``threshold``
        get a number, so at most that many credentials are ever checked per lock period.
        The attempt stays counted unless the caller refunds or clears it on success.
        """
        return await self._session.scalar(
            sa.update(users)
            .where(
                users.c.id == user_id,
                users.c.failed_attempts < threshold,
                sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= now),
            )
            .values(failed_attempts=users.c.failed_attempts + 1)
            .returning(users.c.failed_attempts)
        )

    async def refund_attempt(self, user_id: uuid.UUID) -> None:
        """A correct password with a second factor still to come: not a failure."""
        await self._session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(failed_attempts=sa.func.greatest(users.c.failed_attempts - 1, 0))
        )

    async def clear_attempts(self, user_id: uuid.UUID) -> None:
        """A completed login: forget failures and the lockout escalation."""
        await self._session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(failed_attempts=0, lockouts=0, locked_until=None)
        )

    async def lock(self, user_id: uuid.UUID, until: datetime, now: datetime) -> int | None:
        """Lock until ``until`` and restart the count; returns the lockouts so far."""
        return await self._session.scalar(
            sa.update(users)
            .where(
                users.c.id == user_id,
                sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= now),
            )
            .values(
                locked_until=until,
                failed_attempts=0,
                lockouts=users.c.lockouts + 1,
                updated_at=now,
            )
            .returning(users.c.lockouts)
        )

    async def locked_until(self, user_id: uuid.UUID) -> datetime | None:
        return await self._session.scalar(
            sa.select(users.c.locked_until).where(users.c.id == user_id)
        )

    # -- credentials -----------------------------------------------------------------

    async def set_password(
        self, user_id: uuid.UUID, password_hash: str, now: datetime, *, changed: bool = True
    ) -> None:
        """Store a new hash; ``changed=False`` for a transparent re-hash of the same password."""
        values: dict[str, object] = {"password_hash": password_hash, "updated_at": now}
        if changed:
            values["password_changed_at"] = now
        await self._session.execute(sa.update(users).where(users.c.id == user_id).values(**values))

    async def mark_email_verified(self, user_id: uuid.UUID, now: datetime) -> bool:
        """True when this verified the address (False if it already was)."""
        updated = await self._session.scalar(
            sa.update(users)
            .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
            .values(email_verified_at=now, updated_at=now)
            .returning(users.c.id)
        )
        return updated is not None

    # -- TOTP --------------------------------------------------------------------------

    async def set_pending_totp(self, user_id: uuid.UUID, secret: bytes, now: datetime) -> None:
        await self._session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(totp_pending_secret_encrypted=secret, updated_at=now)
        )

    async def enable_totp(
        self, user_id: uuid.UUID, secret: bytes, accepted_step: int, now: datetime
    ) -> None:
        await self._session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(
                totp_secret_encrypted=secret,
                totp_pending_secret_encrypted=None,
                totp_enabled_at=now,
                totp_last_used_step=accepted_step,
                updated_at=now,
            )
        )

    async def disable_totp(self, user_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(
                totp_secret_encrypted=None,
                totp_pending_secret_encrypted=None,
                totp_enabled_at=None,
                totp_last_used_step=None,
                updated_at=now,
            )
        )

    async def accept_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record ``step`` as used unless it (or a later one) was: the replay guard.

        Atomic, so two concurrent requests with the same code cannot both succeed.
        """
        updated = await self._session.scalar(
            sa.update(users)
            .where(
                users.c.id == user_id,
                sa.or_(users.c.totp_last_used_step.is_(None), users.c.totp_last_used_step < step),
            )
            .values(totp_last_used_step=step)
            .returning(users.c.id)
        )
        return updated is not None

    # -- roles -------------------------------------------------------------------------

    async def set_roles(self, user_id: uuid.UUID, roles: list[str], now: datetime) -> None:
        await self._session.execute(
            sa.update(users).where(users.c.id == user_id).values(roles=roles, updated_at=now)
        )

    async def set_kyc_level(self, user_id: uuid.UUID, level: int, now: datetime) -> bool:
        """Set the KYC level the kyc service reported; False for an unknown user."""
        updated = await self._session.scalar(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(kyc_level=level, updated_at=now)
            .returning(users.c.id)
        )
        return updated is not None

    async def count_admins_except(self, user_id: uuid.UUID) -> int:
        count = await self._session.scalar(
            sa.select(sa.func.count())
            .select_from(users)
            .where(users.c.roles.any(Role.ADMIN.value), users.c.id != user_id)
        )
        return int(count or 0)


def _record(row: Row) -> UserRecord:
    m = row._mapping
    user = User(
        id=m["id"],
        email=m["email"],
        kind=UserKind(m["kind"]),
        roles=frozenset(Role(r) for r in m["roles"]),
        country_code=m["country_code"],
        created_at=m["created_at"],
        email_verified_at=m["email_verified_at"],
        totp_enabled=m["totp_enabled_at"] is not None,
        kyc_level=m["kyc_level"],
        locked_until=m["locked_until"],
    )
    return UserRecord(
        user=user,
        password_hash=m["password_hash"],
        totp_secret=m["totp_secret_encrypted"],
        totp_pending_secret=m["totp_pending_secret_encrypted"],
        totp_last_used_step=m["totp_last_used_step"],
        lockouts=m["lockouts"],
    )
