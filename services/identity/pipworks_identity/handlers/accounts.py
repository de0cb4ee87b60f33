"""Accounts: registration, email verification, password reset and change."""

from __future__ import annotations

import uuid

from pipworks.events.v1 import identity_pb2
from pipworks_identity import commands
from pipworks_identity.adapters.repositories import (
    OneTimeTokenRepository,
    SessionRepository,
    TokenPurpose,
    UserRecord,
    UserRepository,
)
from pipworks_identity.adapters.repositories.challenges import MfaChallengeRepository
from pipworks_identity.adapters.repositories.users import NewUser
from pipworks_identity.domain.credentials import new_token, token_digest
from pipworks_identity.domain.roles import Role, UserKind
from pipworks_identity.domain.sessions import ClientInfo
from pipworks_identity.domain.users import User
from pipworks_identity.handlers import events
from pipworks_identity.handlers.attempts import (
    charge_address,
    invalid_credentials,
    record_failure,
    reserve_attempt,
)
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.encryption import phone_context
from pipworks_identity.handlers.results import Registered
from pipworks_platform.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated


async def register(deps: Deps, cmd: commands.Register, client: ClientInfo) -> Registered:
    """A new client account; the verification token goes out through the outbox."""
    now = deps.clock()
    await charge_address(deps, client, now)
    password_hash = await deps.hasher.hash(cmd.password)
    user = User(
        id=uuid.uuid4(),
        email=cmd.email,
        kind=UserKind.CLIENT,
        roles=frozenset({Role.CLIENT}),
        country_code=cmd.country_code,
        created_at=now,
    )
    phone = (
        deps.cipher.encrypt_text(cmd.phone, context=phone_context(user.id)) if cmd.phone else None
    )
    token = new_token()
    expires_at = now + deps.config.lifetimes.email_verification
    async with deps.uow() as uow:
        added = await UserRepository(uow.session).add(
            NewUser(user, password_hash, phone_encrypted=phone, referral_code=cmd.referral_code)
        )
        if not added:
            raise AlreadyExists("an account with this email exists", reason="EMAIL_TAKEN")
        await OneTimeTokenRepository(uow.session).issue(
            token_hash=token_digest(token),
            user_id=user.id,
            purpose=TokenPurpose.EMAIL_VERIFICATION,
            now=now,
            expires_at=expires_at,
        )
        uow.emit(
            identity_pb2.UserRegistered(
                user_id=str(user.id),
                country_code=cmd.country_code,
                referral_code=cmd.referral_code or "",
                registered_at=events.timestamp(now),
            )
        )
        uow.emit(events.email_verification_requested(user.id, user.email, token, expires_at))
        await uow.commit()
    reveal = deps.config.reveal_verification_token
    return Registered(user_id=user.id, verification_token=token if reveal else None)


async def verify_email(deps: Deps, cmd: commands.VerifyEmail, client: ClientInfo) -> None:
    now = deps.clock()
    await charge_address(deps, client, now)
    async with deps.uow() as uow:
        user_id = await OneTimeTokenRepository(uow.session).consume(
            token_digest(cmd.token), TokenPurpose.EMAIL_VERIFICATION, now
        )
        if user_id is None:
            raise Unauthenticated(
                "the verification token is not valid or has expired", reason="TOKEN_INVALID"
            )
        if await UserRepository(uow.session).mark_email_verified(user_id, now):
            uow.emit(
                identity_pb2.UserEmailVerified(
                    user_id=str(user_id), verified_at=events.timestamp(now)
                )
            )
        await uow.commit()


async def request_password_reset(
    deps: Deps, cmd: commands.RequestPasswordReset, client: ClientInfo
) -> None:
    """Sends a reset token if the account exists; the caller never learns whether it does."""
    now = deps.clock()
    await charge_address(deps, client, now)
    token = new_token()
    expires_at = now + deps.config.lifetimes.password_reset
    async with deps.uow() as uow:
        record = await UserRepository(uow.session).by_email(cmd.email)
        if record is None:
            return
        await OneTimeTokenRepository(uow.session).issue(
            token_hash=token_digest(token),
            user_id=record.user.id,
            purpose=TokenPurpose.PASSWORD_RESET,
            now=now,
            expires_at=expires_at,
        )
        uow.emit(
            identity_pb2.PasswordResetRequested(
                user_id=str(record.user.id),
                email=record.user.email,
                token=token,
                expires_at=events.timestamp(expires_at),
            )
        )
        await uow.commit()


async def reset_password(deps: Deps, cmd: commands.ResetPassword, client: ClientInfo) -> None:
    """Set a new password with a reset token; every session ends and the lock lifts."""
    now = deps.clock()
    await charge_address(deps, client, now)
    password_hash = await deps.hasher.hash(cmd.new_password)
    async with deps.uow() as uow:
        user_id = await OneTimeTokenRepository(uow.session).consume(
            token_digest(cmd.token), TokenPurpose.PASSWORD_RESET, now
        )
        if user_id is None:
            raise Unauthenticated(
                "the reset token is not valid or has expired", reason="TOKEN_INVALID"
            )
        users = UserRepository(uow.session)
        await users.set_password(user_id, password_hash, now)
        # Proving control of the mailbox ends a lockout (RFC-style account recovery).
        await users.clear_attempts(user_id)
        await SessionRepository(uow.session).revoke_all(user_id, now, "password_reset")
        await MfaChallengeRepository(uow.session).discard_for_user(user_id)
        await uow.commit()


async def change_password(
    deps: Deps, caller: commands.Caller, cmd: commands.ChangePassword, client: ClientInfo
) -> None:
    """Needs the current password (counted like a login attempt); other sessions end."""
    now = deps.clock()
    if cmd.new_password == cmd.current_password:
        raise InvalidArgument.for_field("new_password", "must differ from the current password")
    record = await _load(deps, caller.user_id)
    attempt = await reserve_attempt(deps, caller.user_id, client, now)
    if not await deps.hasher.verify(record.password_hash, cmd.current_password):
        async with deps.uow() as uow:
            await record_failure(uow, deps, caller.user_id, attempt, now)
            await uow.commit()
        raise invalid_credentials()
    password_hash = await deps.hasher.hash(cmd.new_password)
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        await users.set_password(caller.user_id, password_hash, now)
        await users.refund_attempt(caller.user_id)
        await SessionRepository(uow.session).revoke_all(
            caller.user_id, now, "password_changed", keep=caller.session_id
        )
        await uow.commit()


async def get_current_user(deps: Deps, caller: commands.Caller) -> User:
    return (await _load(deps, caller.user_id)).user


async def _load(deps: Deps, user_id: uuid.UUID) -> UserRecord:
    async with deps.uow() as uow:
        record = await UserRepository(uow.session).get(user_id)
    if record is None:
        # A valid token for an account that no longer exists.
        raise NotFound("user", str(user_id))
    return record
