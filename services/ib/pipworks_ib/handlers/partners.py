"""Partners, the tree, referral links and clicks, client attribution."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC
from typing import Any

import structlog

from pipworks.events.v1 import ib_pb2, identity_pb2
from pipworks_ib.adapters import store
from pipworks_ib.domain.tree import check_move
from pipworks_ib.handlers.commissions import event_uuid, timestamp
from pipworks_ib.handlers.context import Caller, Deps, own_partner
from pipworks_ib.settings import JoinMode
from pipworks_platform.audit import AuditLogRepository, AuditRecord
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
)

log = structlog.get_logger(__name__)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
Row = Any


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def audit(
    uow: UnitOfWork, deps: Deps, actor: str, action: str, subject: str, **details: Any
) -> None:
    await AuditLogRepository(uow.session).append(
        AuditRecord(actor=actor, action=action, subject=subject, details=details), deps.clock()
    )


def _created_event(
    partner_id: uuid.UUID, user_id: uuid.UUID, parent: uuid.UUID | None, deps: Deps
) -> ib_pb2.IbPartnerCreated:
    return ib_pb2.IbPartnerCreated(
        partner_id=str(partner_id),
        user_id=str(user_id),
        parent_partner_id=str(parent) if parent else "",
        created_at=timestamp(deps.clock()),
    )


async def _require_parent(uow: UnitOfWork, parent_id: uuid.UUID | None) -> None:
    if parent_id is not None and await store.partner(uow.session, parent_id) is None:
        raise NotFound("partner", str(parent_id), reason="PARENT_NOT_FOUND")


async def _require_plan(uow: UnitOfWork, plan_id: str | None) -> None:
    if plan_id and await store.plan(uow.session, plan_id) is None:
        raise NotFound("plan", plan_id, reason="PLAN_NOT_FOUND")


async def create_partner(
    deps: Deps, caller: Caller, user_id: uuid.UUID, parent_id: uuid.UUID | None, plan_id: str | None
) -> Row:
    async with deps.uow() as uow:
        await _require_parent(uow, parent_id)
        await _require_plan(uow, plan_id)
        partner_id = uuid.uuid4()
        created = await store.insert_partner(
            uow.session, partner_id, user_id, parent_id, "active", plan_id, deps.clock()
        )
        if not created:
            raise AlreadyExists("the user is already a partner", reason="PARTNER_EXISTS")
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.partner.created",
            f"partner:{partner_id}",
            user_id=str(user_id),
            parent_partner_id=str(parent_id) if parent_id else "",
            plan_id=plan_id or "",
        )
        uow.emit(_created_event(partner_id, user_id, parent_id, deps))
        row = await store.partner(uow.session, partner_id)
        await uow.commit()
        return row


async def join_program(deps: Deps, caller: Caller, invitation_code: str) -> Row:
    user_id = caller.user_id()
    mode = deps.settings.ib_join_mode
    async with deps.uow() as uow:
        existing = await store.partner_of_user(uow.session, user_id)
        if existing is not None:
            return existing
        parent: uuid.UUID | None = None
        if invitation_code:
            link = await store.link(uow.session, invitation_code.strip().upper())
            if link is None:
                raise NotFound("referral code", invitation_code, reason="INVITATION_NOT_FOUND")
            parent = link["partner_id"]
        elif mode is JoinMode.INVITATION:
            raise FailedPrecondition(
                "the IB program is by invitation: give an IB's referral code",
                reason="INVITATION_REQUIRED",
            )
        else:
            attributed = await store.attribution(uow.session, user_id)
            parent = attributed["partner_id"] if attributed is not None else None
        status = "pending" if mode is JoinMode.APPROVAL else "active"
        partner_id = uuid.uuid4()
        await store.insert_partner(
            uow.session, partner_id, user_id, parent, status, None, deps.clock()
        )
        if status == "active":
            uow.emit(_created_event(partner_id, user_id, parent, deps))
        row = await store.partner(uow.session, partner_id)
        await uow.commit()
        return row


async def approve_partner(deps: Deps, caller: Caller, partner_id: uuid.UUID) -> Row:
    async with deps.uow() as uow:
        row = await store.partner(uow.session, partner_id, lock=True)
        if row is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        if row["status"] == "active":
            return row
        await store.set_partner(uow.session, partner_id, status="active")
        await audit(uow, deps, caller.actor, "ib.partner.approved", f"partner:{partner_id}")
        uow.emit(_created_event(partner_id, row["user_id"], row["parent_id"], deps))
        row = await store.partner(uow.session, partner_id)
        await uow.commit()
        return row


async def on_role_changed(deps: Deps, uow: UnitOfWork, message: identity_pb2.RoleChanged) -> None:
    """Granting the "ib" role in identity makes the user an active partner: a pending
    one is approved; otherwise it joins under the partner it was referred by."""
    if message.role != "ib" or not message.granted:
        return
    user_id = event_uuid(message.user_id, "user_id")
    existing = await store.partner_of_user(uow.session, user_id)
    if existing is not None:
        if existing["status"] != "active":
            await store.set_partner(uow.session, existing["id"], status="active")
            uow.emit(_created_event(existing["id"], user_id, existing["parent_id"], deps))
        return
    attributed = await store.attribution(uow.session, user_id)
    parent = attributed["partner_id"] if attributed is not None else None
    partner_id = uuid.uuid4()
    await store.insert_partner(
        uow.session, partner_id, user_id, parent, "active", None, deps.clock()
    )
    uow.emit(_created_event(partner_id, user_id, parent, deps))


async def move_partner(
    deps: Deps, caller: Caller, partner_id: uuid.UUID, new_parent: uuid.UUID | None, reason: str
) -> tuple[Row, int]:
    async with deps.uow() as uow:
        # One tree change at a time: moves are rare, and concurrent moves could cross.
        await uow.session.execute(store.sa.text("SELECT pg_advisory_xact_lock(4242001)"))
        row = await store.partner(uow.session, partner_id, lock=True)
        if row is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        await _require_parent(uow, new_parent)
        descendants = await store.subtree(uow.session, partner_id)
        check_move(
            str(partner_id), str(new_parent) if new_parent else None, {str(p) for p in descendants}
        )
        if row["parent_id"] == new_parent:
            return row, 0
        # A move re-hangs the subtree whole: the partners moved are its members.
        await store.move_subtree(uow.session, partner_id, new_parent)
        moved = len(descendants)
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.partner.moved",
            f"partner:{partner_id}",
            old_parent_partner_id=str(row["parent_id"] or ""),
            new_parent_partner_id=str(new_parent or ""),
            moved=moved,
            reason=reason,
        )
        row = await store.partner(uow.session, partner_id)
        await uow.commit()
        return row, moved


async def assign_plan(deps: Deps, caller: Caller, partner_id: uuid.UUID, plan_id: str) -> Row:
    async with deps.uow() as uow:
        row = await store.partner(uow.session, partner_id, lock=True)
        if row is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        await _require_plan(uow, plan_id)
        await store.set_partner(uow.session, partner_id, plan_id=plan_id or None)
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.partner.plan_assigned",
            f"partner:{partner_id}",
            old_plan_id=row["plan_id"] or "",
            plan_id=plan_id,
        )
        row = await store.partner(uow.session, partner_id)
        await uow.commit()
        return row


async def create_link(deps: Deps, caller: Caller, campaign: str) -> Row:
    async with deps.uow() as uow:
        partner = await own_partner(uow.session, caller)
        partner_id = partner["id"]
        if partner["status"] != "active":
            raise FailedPrecondition("the partner is not active yet", reason="PARTNER_NOT_ACTIVE")
        for _ in range(5):
            code = new_code()
            if await store.insert_link(uow.session, code, partner_id, campaign, deps.clock()):
                row = await store.link(uow.session, code)
                await uow.commit()
                return row
    raise FailedPrecondition(
        "could not allocate a code; try again", reason="CODE_COLLISION"
    )  # pragma: no cover


async def record_click(deps: Deps, code: str) -> None:
    async with deps.uow() as uow:
        if await store.link(uow.session, code) is None:
            raise NotFound("referral code", code, reason="LINK_NOT_FOUND")
        await store.record_click(uow.session, code, deps.clock().astimezone(UTC).date())
        await uow.commit()


async def on_user_registered(
    deps: Deps, uow: UnitOfWork, message: identity_pb2.UserRegistered
) -> None:
    if not message.referral_code:
        return
    client = event_uuid(message.user_id, "user_id")
    code = message.referral_code.strip().upper()
    link = await store.link(uow.session, code)
    if link is None:
        log.info("registration with an unknown referral code", code=code)
        return
    if await store.attribution(uow.session, client) is not None:
        return  # the first attribution stands; staff re-attribute explicitly
    now = deps.clock()
    await store.attribute(
        uow.session, client, link["partner_id"], code, link["campaign"], False, now
    )
    uow.emit(
        ib_pb2.IbClientAttributed(
            client_user_id=str(client),
            partner_id=str(link["partner_id"]),
            referral_code=code,
            campaign=link["campaign"],
            attributed_at=timestamp(now),
        )
    )


async def reattribute(
    deps: Deps, caller: Caller, client: uuid.UUID, partner_id: uuid.UUID, reason: str
) -> uuid.UUID | None:
    async with deps.uow() as uow:
        partner = await store.partner(uow.session, partner_id)
        if partner is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        if partner["user_id"] == client:
            raise FailedPrecondition(
                "a partner cannot be its own client", reason="SELF_ATTRIBUTION"
            )
        previous = await store.attribution(uow.session, client, lock=True)
        previous_id = previous["partner_id"] if previous is not None else None
        if previous_id == partner_id:
            return previous_id
        now = deps.clock()
        await store.attribute(
            uow.session,
            client,
            partner_id,
            previous["referral_code"] if previous is not None else None,
            previous["campaign"] if previous is not None else "",
            True,
            now,
        )
        await audit(
            uow,
            deps,
            caller.actor,
            "ib.client.reattributed",
            f"client:{client}",
            previous_partner_id=str(previous_id or ""),
            partner_id=str(partner_id),
            reason=reason,
        )
        uow.emit(
            ib_pb2.IbClientAttributed(
                client_user_id=str(client),
                partner_id=str(partner_id),
                previous_partner_id=str(previous_id or ""),
                manual=True,
                attributed_at=timestamp(now),
            )
        )
        await uow.commit()
        return previous_id
