"""Starting a session: its refresh-token family, the first token pair, the login event."""

from __future__ import annotations

import uuid
from datetime import datetime

from pipworks_identity.adapters.access_tokens import AccessToken
from pipworks_identity.adapters.repositories import SessionRepository
from pipworks_identity.domain.credentials import new_token, token_digest
from pipworks_identity.domain.sessions import ClientInfo, refresh_token_expiry
from pipworks_identity.domain.users import User
from pipworks_identity.handlers import events
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.results import TokenPair
from pipworks_platform.db import UnitOfWork


async def start_session(
    uow: UnitOfWork, deps: Deps, user: User, *, aal: int, client: ClientInfo, now: datetime
) -> TokenPair:
    lifetimes = deps.config.lifetimes
    session_id = uuid.uuid4()
    expires_at = now + lifetimes.session
    refresh_token = new_token()
    refresh_expires_at = refresh_token_expiry(now, lifetimes.refresh_token, expires_at)
    await SessionRepository(uow.session).start(
        session_id=session_id,
        user_id=user.id,
        aal=aal,
        client=client,
        now=now,
        expires_at=expires_at,
        refresh_hash=token_digest(refresh_token),
        refresh_expires_at=refresh_expires_at,
    )
    uow.emit(events.login_succeeded(user.id, session_id, aal, client, now))
    return TokenPair(
        access_token=access_token_for(deps, user, aal=aal, session_id=session_id, now=now),
        refresh_token=refresh_token,
        refresh_expires_at=refresh_expires_at,
        session_id=session_id,
    )


def access_token_for(
    deps: Deps, user: User, *, aal: int, session_id: uuid.UUID, now: datetime
) -> AccessToken:
    return deps.tokens.for_user(
        user_id=str(user.id),
        roles=user.role_names,
        aal=aal,
        session_id=str(session_id),
        mfa_enabled=user.totp_enabled,
        now=now,
    )
