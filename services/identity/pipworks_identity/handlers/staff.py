"""Administration: staff accounts, roles, service accounts, reading any user.

Every change is written to the audit log in the transaction that makes it, so there is
no state change without its entry and no entry without its state change.
"""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa

from pipworks_identity import commands
from pipworks_identity.adapters.repositories import (
    OneTimeTokenRepository,
    ServiceAccountRecord,
    ServiceAccountRepository,
    TokenPurpose,
    UserRepository,
)
from pipworks_identity.adapters.repositories.users import NewUser
from pipworks_identity.domain.credentials import new_client_id, new_token, token_digest
from pipworks_identity.domain.roles import Role, UserKind, check_grant
from pipworks_identity.domain.users import User
from pipworks_identity.handlers import events
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.results import ServiceAccountCredentials
from pipworks_platform.audit import SYSTEM_ACTOR, AuditLogRepository, AuditRecord
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import AlreadyExists, NotFound

# Serialises demotions of admins, so two admins cannot demote each other at once and
# leave nobody ("PWADMINS").
ADMIN_ROLE_LOCK_KEY = 0x505741444D494E53
# Serialises bootstrap across replicas starting together ("PWBOOTST").
BOOTSTRAP_LOCK_KEY = 0x5057424F4F545354


async def create_staff_user(deps: Deps, actor: str, cmd: commands.CreateStaffUser) -> User:
    now = deps.clock()
    for role in cmd.roles:
        check_grant(UserKind.STAFF, role)
    password_hash = await deps.hasher.hash(cmd.password)
    user = User(
        id=uuid.uuid4(),
        email=cmd.email,
        kind=UserKind.STAFF,
        roles=cmd.roles,
        country_code=cmd.country_code,
        created_at=now,
    )
    async with deps.uow() as uow:
        await _add_staff(uow, deps, user, password_hash, actor=actor, action="user.staff_created")
        await uow.commit()
    return user


async def grant_role(deps: Deps, actor: str, cmd: commands.ChangeRole) -> User:
    now = deps.clock()
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        user = await _locked_user(users, cmd.user_id)
        changed = user.with_role(cmd.role)
        if changed != user:
            await users.set_roles(user.id, changed.role_names, now)
            await _audit(uow, deps, actor, "role.granted", user.id, {"role": cmd.role.value})
            uow.emit(
                events.role_changed(user.id, cmd.role.value, granted=True, actor=actor, now=now)
            )
        await uow.commit()
    return changed


async def revoke_role(deps: Deps, actor: str, cmd: commands.ChangeRole) -> User:
    now = deps.clock()
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        if cmd.role is Role.ADMIN:
            await uow.session.execute(sa.select(sa.func.pg_advisory_xact_lock(ADMIN_ROLE_LOCK_KEY)))
        user = await _locked_user(users, cmd.user_id)
        other_admins = await users.count_admins_except(user.id) if cmd.role is Role.ADMIN else 1
        changed = user.without_role(cmd.role, other_admins=other_admins)
        if changed != user:
            await users.set_roles(user.id, changed.role_names, now)
            await _audit(uow, deps, actor, "role.revoked", user.id, {"role": cmd.role.value})
            uow.emit(
                events.role_changed(user.id, cmd.role.value, granted=False, actor=actor, now=now)
            )
        await uow.commit()
    return changed


async def create_service_account(
    deps: Deps, actor: str, cmd: commands.CreateServiceAccount
) -> ServiceAccountCredentials:
    """A machine client; its secret is returned once and stored as an argon2id hash."""
    now = deps.clock()
    for role in cmd.roles:
        check_grant(UserKind.STAFF, role)
    client_secret = secrets.token_urlsafe(32)
    account = ServiceAccountRecord(
        id=uuid.uuid4(),
        client_id=new_client_id(),
        name=cmd.name,
        roles=cmd.roles,
        secret_hash=await deps.hasher.hash(client_secret),
    )
    async with deps.uow() as uow:
        if not await ServiceAccountRepository(uow.session).add(account, created_by=actor, now=now):
            raise AlreadyExists("a service account with this name exists", reason="NAME_TAKEN")
        await _audit(
            uow,
            deps,
            actor,
            "service_account.created",
            account.id,
            {"client_id": account.client_id, "name": account.name, "roles": account.role_names},
        )
        await uow.commit()
    return ServiceAccountCredentials(client_id=account.client_id, client_secret=client_secret)


async def get_user(deps: Deps, actor: str, cmd: commands.GetUser) -> User:
    """Staff reading an account is itself audited (who looked at whose data)."""
    async with deps.uow() as uow:
        record = await UserRepository(uow.session).get(cmd.user_id)
        if record is None:
            raise NotFound("user", str(cmd.user_id))
        await _audit(uow, deps, actor, "user.viewed", record.user.id, {})
        await uow.commit()
    return record.user


async def bootstrap_admin(deps: Deps, email: str, password: str, country_code: str | None) -> bool:
    """Create the first admin from configuration; a no-op once the email exists.

    Returns True when it created the account. Safe with many replicas starting at once.
    """
    async with deps.uow() as uow:
        if await UserRepository(uow.session).exists(email):
            return False
    password_hash = await deps.hasher.hash(password)
    now = deps.clock()
    user = User(
        id=uuid.uuid4(),
        email=email,
        kind=UserKind.STAFF,
        roles=frozenset({Role.ADMIN}),
        country_code=country_code,
        created_at=now,
    )
    async with deps.uow() as uow:
        await uow.session.execute(sa.select(sa.func.pg_advisory_xact_lock(BOOTSTRAP_LOCK_KEY)))
        if await UserRepository(uow.session).exists(email):
            return False
        await _add_staff(
            uow,
            deps,
            user,
            password_hash,
            actor=SYSTEM_ACTOR,
            action="user.bootstrap_admin_created",
        )
        await uow.commit()
    return True


async def _add_staff(
    uow: UnitOfWork, deps: Deps, user: User, password_hash: str, *, actor: str, action: str
) -> None:
    now = user.created_at
    if not await UserRepository(uow.session).add(NewUser(user, password_hash)):
        raise AlreadyExists("an account with this email exists", reason="EMAIL_TAKEN")
    token = new_token()
    expires_at = now + deps.config.lifetimes.email_verification
    await OneTimeTokenRepository(uow.session).issue(
        token_hash=token_digest(token),
        user_id=user.id,
        purpose=TokenPurpose.EMAIL_VERIFICATION,
        now=now,
        expires_at=expires_at,
    )
    await _audit(
        uow, deps, actor, action, user.id, {"kind": user.kind.value, "roles": user.role_names}
    )
    uow.emit(events.email_verification_requested(user.id, user.email, token, expires_at))
    for role in user.role_names:
        uow.emit(events.role_changed(user.id, role, granted=True, actor=actor, now=now))


async def _locked_user(users: UserRepository, user_id: uuid.UUID) -> User:
    record = await users.get(user_id, for_update=True)
    if record is None:
        raise NotFound("user", str(user_id))
    return record.user


async def _audit(
    uow: UnitOfWork,
    deps: Deps,
    actor: str,
    action: str,
    subject: uuid.UUID,
    details: dict[str, object],
) -> None:
    await AuditLogRepository(uow.session).append(
        AuditRecord(actor=actor, action=action, subject=str(subject), details=details),
        deps.clock(),
    )
