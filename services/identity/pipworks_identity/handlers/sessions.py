"""The caller's sessions: list, revoke one, log out."""

from __future__ import annotations

from pipworks_identity import commands
from pipworks_identity.adapters.repositories import SessionRepository
from pipworks_identity.commands import SessionCursor
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.results import SessionPage
from pipworks_platform.errors import NotFound


async def list_sessions(
    deps: Deps, caller: commands.Caller, cmd: commands.ListSessions
) -> SessionPage:
    now = deps.clock()
    before = (cmd.after.created_at, cmd.after.session_id) if cmd.after else None
    async with deps.uow() as uow:
        found = await SessionRepository(uow.session).list_active(
            caller.user_id,
            now,
            idle_since=now - deps.config.lifetimes.refresh_token,
            limit=cmd.page_size + 1,
            before=before,
        )
    page, more = found[: cmd.page_size], len(found) > cmd.page_size
    cursor = SessionCursor(page[-1].created_at, page[-1].id) if more and page else None
    return SessionPage(sessions=page, next_cursor=cursor)


async def revoke_session(deps: Deps, caller: commands.Caller, cmd: commands.RevokeSession) -> None:
    """End one of the caller's own sessions; someone else's is reported as not found."""
    now = deps.clock()
    async with deps.uow() as uow:
        sessions = SessionRepository(uow.session)
        session = await sessions.get(cmd.session_id, for_update=True)
        if session is None or session.user_id != caller.user_id:
            raise NotFound("session", str(cmd.session_id))
        await sessions.revoke(session.id, now, "revoked_by_user")
        await uow.commit()


async def logout(deps: Deps, caller: commands.Caller) -> None:
    """End the caller's session; logging out twice is not an error."""
    if caller.session_id is None:
        return
    now = deps.clock()
    async with deps.uow() as uow:
        await SessionRepository(uow.session).revoke(caller.session_id, now, "logout")
        await uow.commit()
