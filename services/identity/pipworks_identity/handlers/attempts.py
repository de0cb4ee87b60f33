"""Guards on credential checks: the per-address throttle and the per-account lockout.

Every check of a password or second factor goes through both. The account counter is
charged in its own committed transaction *before* the (slow) check runs, so however many
attempts arrive at once, no more than the threshold are ever evaluated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from google.protobuf.message import Message

from pipworks_identity.adapters.repositories import ThrottleRepository, UserRepository
from pipworks_identity.domain.sessions import ClientInfo
from pipworks_identity.handlers import events
from pipworks_identity.handlers.context import Deps
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import ResourceExhausted, Unauthenticated


def invalid_credentials() -> Unauthenticated:
    """The one answer to a wrong email, a wrong password or a wrong second factor."""
    return Unauthenticated("the credentials are not valid", reason="INVALID_CREDENTIALS")


def account_locked(locked_until: datetime | None, now: datetime) -> ResourceExhausted:
    wait = (locked_until - now) if locked_until and locked_until > now else timedelta(seconds=1)
    return ResourceExhausted(
        "too many failed attempts; the account is locked for a while",
        reason="ACCOUNT_LOCKED",
        retry_after=timedelta(seconds=max(1, round(wait.total_seconds()))),
    )


async def charge_address(
    deps: Deps,
    client: ClientInfo,
    now: datetime,
    *,
    on_refusal: Callable[[], Message] | None = None,
) -> None:
    """Take a token from the caller's address bucket, or refuse with RESOURCE_EXHAUSTED."""
    if not client.ip_address:
        return
    async with deps.uow() as uow:
        decision = await ThrottleRepository(uow.session).take(
            client.ip_address, deps.config.throttle, now
        )
        if not decision.allowed and on_refusal is not None:
            uow.emit(on_refusal())
        await uow.commit()
    if not decision.allowed:
        raise ResourceExhausted(
            "too many attempts from this address; retry later",
            reason="TOO_MANY_ATTEMPTS",
            retry_after=decision.retry_after,
        )


async def reserve_attempt(deps: Deps, user_id: uuid.UUID, client: ClientInfo, now: datetime) -> int:
    """Count an attempt on the account before checking it; refuse while it is locked."""
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        attempt = await users.reserve_attempt(user_id, now, deps.config.lockout.threshold)
        if attempt is None:
            locked_until = await users.locked_until(user_id)
            uow.emit(
                events.login_failed(user_id, client, events.Reason.LOGIN_FAILURE_REASON_LOCKED, now)
            )
        await uow.commit()
    if attempt is None:
        raise account_locked(locked_until, now)
    return attempt


async def record_failure(
    uow: UnitOfWork,
    deps: Deps,
    user_id: uuid.UUID,
    attempt: int,
    now: datetime,
) -> None:
    """The attempt failed (it is already counted): lock the account if it was the last one."""
    if not deps.config.lockout.locks_at(attempt):
        return
    users = UserRepository(uow.session)
    record = await users.get(user_id, for_update=True)
    if record is None:
        return
    until = deps.config.lockout.locked_until(now, record.lockouts)
    if await users.lock(user_id, until, now) is not None:
        uow.emit(events.user_locked(user_id, until, attempt))
