"""Signing in: password, second factor, token refresh and service-account credentials."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from google.protobuf.message import Message

from pipworks_identity import commands
from pipworks_identity.adapters.access_tokens import AccessToken
from pipworks_identity.adapters.repositories import (
    LoginRestrictionRepository,
    MfaChallengeRepository,
    RecoveryCodeRepository,
    ServiceAccountRepository,
    SessionRepository,
    UserRecord,
    UserRepository,
)
from pipworks_identity.domain.credentials import (
    new_token,
    recovery_code_digest,
    token_digest,
)
from pipworks_identity.domain.sessions import (
    ClientInfo,
    RefreshVerdict,
    judge_refresh,
    refresh_token_expiry,
)
from pipworks_identity.handlers import events
from pipworks_identity.handlers.attempts import (
    charge_address,
    invalid_credentials,
    record_failure,
    reserve_attempt,
)
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.encryption import totp_secret_context
from pipworks_identity.handlers.results import LoginResult, MfaChallenge, TokenPair
from pipworks_identity.handlers.session_tokens import access_token_for, start_session
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import PermissionDenied, Unauthenticated

Reason = events.Reason


def _throttled(client: ClientInfo, now: datetime) -> Callable[[], Message]:
    return lambda: events.login_failed(None, client, Reason.LOGIN_FAILURE_REASON_THROTTLED, now)


def _invalid_challenge() -> Unauthenticated:
    return Unauthenticated(
        "the MFA challenge is not valid or has expired; log in again",
        reason="MFA_CHALLENGE_INVALID",
    )


def _invalid_refresh_token(reason: str = "REFRESH_TOKEN_INVALID") -> Unauthenticated:
    return Unauthenticated("the refresh token is not valid; log in again", reason=reason)


async def login(deps: Deps, cmd: commands.Login, client: ClientInfo) -> LoginResult:
    """Check the password: tokens (aal 1), or an MFA challenge when TOTP is on."""
    now = deps.clock()
    await charge_address(deps, client, now, on_refusal=_throttled(client, now))
    async with deps.uow() as uow:
        record = await UserRepository(uow.session).by_email(cmd.email)
    attempt = await reserve_attempt(deps, record.user.id, client, now) if record else 0
    # Unknown emails are checked against a dummy hash: same answer, same time.
    matched = await deps.hasher.verify(record.password_hash if record else None, cmd.password)
    if record is None or not matched:
        user_id = record.user.id if record else None
        async with deps.uow() as uow:
            if user_id is not None:
                await record_failure(uow, deps, user_id, attempt, now)
            uow.emit(
                events.login_failed(
                    user_id, client, Reason.LOGIN_FAILURE_REASON_BAD_CREDENTIALS, now
                )
            )
            await uow.commit()
        raise invalid_credentials()
    return await _password_accepted(deps, record, cmd.password, client, now)


async def _password_accepted(
    deps: Deps, record: UserRecord, password: str, client: ClientInfo, now: datetime
) -> LoginResult:
    user = record.user
    await _refuse_if_restricted(deps, user.id, client, now)
    # Hashes made under older argon2 parameters are upgraded while the password is at hand.
    new_hash = (
        await deps.hasher.hash(password) if deps.hasher.needs_rehash(record.password_hash) else None
    )
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        if new_hash is not None:
            await users.set_password(user.id, new_hash, now, changed=False)
        if not user.totp_enabled:
            await users.clear_attempts(user.id)
            tokens = await start_session(uow, deps, user, aal=1, client=client, now=now)
            await uow.commit()
            return LoginResult(tokens=tokens)
        # Half-way there: the attempt stays open until the second factor checks out.
        await users.refund_attempt(user.id)
        token = new_token()
        expires_at = now + deps.config.lifetimes.mfa_challenge
        await MfaChallengeRepository(uow.session).create(
            token_hash=token_digest(token),
            user_id=user.id,
            client=client,
            now=now,
            expires_at=expires_at,
        )
        await uow.commit()
    return LoginResult(challenge=MfaChallenge(token=token, expires_at=expires_at))


async def _refuse_if_restricted(
    deps: Deps, user_id: uuid.UUID, client: ClientInfo, now: datetime
) -> None:
    async with deps.uow() as uow:
        if not await _restricted(uow, user_id, client, now):
            return
        await uow.commit()
    raise account_restricted()


async def _restricted(
    uow: UnitOfWork, user_id: uuid.UUID, client: ClientInfo, now: datetime
) -> bool:
    """Anti-fraud blocked logins. Checked once the credentials are right, so only the
    account's owner learns of it; the attempt is refunded and the refusal recorded."""
    if not await LoginRestrictionRepository(uow.session).is_restricted(user_id):
        return False
    await UserRepository(uow.session).refund_attempt(user_id)
    uow.emit(events.login_failed(user_id, client, Reason.LOGIN_FAILURE_REASON_RESTRICTED, now))
    return True


def account_restricted() -> PermissionDenied:
    return PermissionDenied(
        "the account is restricted; contact support", reason="ACCOUNT_RESTRICTED"
    )


async def verify_mfa(deps: Deps, cmd: commands.VerifyMfa, client: ClientInfo) -> TokenPair:
    """Complete a login with a TOTP code (replays refused) or a single-use recovery code."""
    now = deps.clock()
    await charge_address(deps, client, now, on_refusal=_throttled(client, now))
    challenge = token_digest(cmd.challenge_token)
    async with deps.uow() as uow:
        user_id = await MfaChallengeRepository(uow.session).find_live(challenge, now)
        record = await UserRepository(uow.session).get(user_id) if user_id else None
    if record is None or record.totp_secret is None:
        raise _invalid_challenge()
    user = record.user
    attempt = await reserve_attempt(deps, user.id, client, now)

    step = None
    if cmd.totp_code is not None:
        secret = deps.cipher.decrypt_text(record.totp_secret, context=totp_secret_context(user.id))
        step = deps.totp.matching_step(secret, cmd.totp_code, now)
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        if cmd.totp_code is not None:
            accepted = step is not None and await users.accept_totp_step(user.id, step)
            failure = Reason.LOGIN_FAILURE_REASON_BAD_SECOND_FACTOR
        else:
            assert cmd.recovery_code is not None
            accepted = await RecoveryCodeRepository(uow.session).consume(
                user.id, recovery_code_digest(str(user.id), cmd.recovery_code), now
            )
            failure = Reason.LOGIN_FAILURE_REASON_BAD_RECOVERY_CODE
        if accepted and await _restricted(uow, user.id, client, now):
            await uow.commit()
            raise account_restricted()
        if accepted:
            if not await MfaChallengeRepository(uow.session).consume(challenge, now):
                raise _invalid_challenge()  # used concurrently: roll the factor back
            await users.clear_attempts(user.id)
            tokens = await start_session(uow, deps, user, aal=2, client=client, now=now)
            await uow.commit()
            return tokens
        await record_failure(uow, deps, user.id, attempt, now)
        uow.emit(events.login_failed(user.id, client, failure, now))
        await uow.commit()
    raise invalid_credentials()


async def refresh(deps: Deps, cmd: commands.Refresh) -> TokenPair:
    """Rotate a refresh token; a spent one presented again revokes its whole family."""
    now = deps.clock()
    presented = token_digest(cmd.refresh_token)
    async with deps.uow() as uow:
        sessions = SessionRepository(uow.session)
        stored = await sessions.find_refresh_token(presented)
        if stored is None:
            raise _invalid_refresh_token()
        # Lock the family first, then re-read the token: concurrent refreshes of one
        # token serialise here, and the second finds it spent.
        session = await sessions.get(stored.session_id, for_update=True)
        stored = await sessions.find_refresh_token(presented)
        if session is None or stored is None:
            raise _invalid_refresh_token()
        verdict = judge_refresh(session.family, stored.token, now)
        if verdict is RefreshVerdict.REUSED:
            await sessions.revoke(session.id, now, "refresh_token_reuse")
            await uow.commit()
            raise _invalid_refresh_token("REFRESH_TOKEN_REUSED")
        if verdict is not RefreshVerdict.ROTATE:
            raise _invalid_refresh_token()
        record = await UserRepository(uow.session).get(session.user_id)
        if record is None:
            raise _invalid_refresh_token()
        token = new_token()
        expires_at = refresh_token_expiry(
            now, deps.config.lifetimes.refresh_token, session.expires_at
        )
        await sessions.rotate(
            session_id=session.id,
            spent_hash=presented,
            new_hash=token_digest(token),
            generation=session.generation + 1,
            now=now,
            expires_at=expires_at,
        )
        await uow.commit()
    return TokenPair(
        # Roles and the TOTP flag are read afresh: a refresh picks up role changes.
        access_token=access_token_for(
            deps, record.user, aal=session.aal, session_id=session.id, now=now
        ),
        refresh_token=token,
        refresh_expires_at=expires_at,
        session_id=session.id,
    )


async def authenticate_service_account(
    deps: Deps, cmd: commands.AuthenticateServiceAccount, client: ClientInfo
) -> AccessToken:
    now = deps.clock()
    await charge_address(deps, client, now)
    async with deps.uow() as uow:
        account = await ServiceAccountRepository(uow.session).by_client_id(cmd.client_id)
    # An unknown client id costs a (dummy) verification too: same answer, same time.
    matched = await deps.hasher.verify(account.secret_hash if account else None, cmd.client_secret)
    if account is None or not matched:
        raise invalid_credentials()
    return deps.tokens.for_service(client_id=account.client_id, roles=account.role_names, now=now)
