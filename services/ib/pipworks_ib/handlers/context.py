"""What every use case works with: the unit of work, the clock, settings, the plan cache,
and the caller's scope (an IB sees its own subtree, staff see everything)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_ib.adapters import store
from pipworks_ib.domain.plans import PlanVersion
from pipworks_ib.settings import IbSettings
from pipworks_platform.auth import require_principal
from pipworks_platform.db import UnitOfWorkFactory
from pipworks_platform.errors import InvalidArgument, NotFound, PermissionDenied

STAFF_READ_ROLES = frozenset({"admin", "support"})


def utc_now() -> datetime:
    return datetime.now(UTC)


class PlanCache:
    """Plan versions by (plan id, revision). A plan's revision grows with every new
    version, and the chain query returns the current revision, so a stale entry is never
    used: versions themselves are immutable."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], list[PlanVersion]] = {}

    async def versions(
        self, session: AsyncSession, wanted: dict[str, int]
    ) -> dict[str, list[PlanVersion]]:
        missing = [p for p, r in wanted.items() if (p, r) not in self._versions]
        if missing:
            loaded = await store.load_plan_versions(session, missing)
            for plan_id in missing:
                self._versions[(plan_id, wanted[plan_id])] = loaded.get(plan_id, [])
        return {p: self._versions[(p, r)] for p, r in wanted.items()}


@dataclass
class Deps:
    uow: UnitOfWorkFactory
    settings: IbSettings
    clock: Callable[[], datetime] = field(default=utc_now)
    plans: PlanCache = field(default_factory=PlanCache)


@dataclass(frozen=True)
class Caller:
    subject: str
    roles: frozenset[str]

    @classmethod
    def current(cls) -> Caller:
        principal = require_principal()
        return cls(principal.subject, frozenset(principal.roles))

    @property
    def is_staff(self) -> bool:
        return not self.roles.isdisjoint(STAFF_READ_ROLES)

    @property
    def actor(self) -> str:
        return self.subject

    def user_id(self) -> uuid.UUID:
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            raise PermissionDenied("the caller is not a user", reason="NOT_A_USER") from None


def parse_id(raw: str, field_name: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument.for_field(field_name, "must be a UUID") from None


async def own_partner(session: AsyncSession, caller: Caller) -> store.Row:
    """The caller's own partner row."""
    partner = await store.partner_of_user(session, caller.user_id())
    if partner is None:
        raise PermissionDenied("the caller is not a partner", reason="NOT_A_PARTNER")
    return partner


async def scoped_partner(session: AsyncSession, caller: Caller, requested: str) -> uuid.UUID:
    """The partner a read is about. Permission before existence: an IB may name only a
    partner of its own subtree and learns nothing about any other."""
    if caller.is_staff:
        if not requested:
            raise InvalidArgument.for_field("partner_id", "staff must name a partner")
        partner_id = parse_id(requested, "partner_id")
        if await store.partner(session, partner_id) is None:
            raise NotFound("partner", str(partner_id), reason="PARTNER_NOT_FOUND")
        return partner_id
    mine = (await own_partner(session, caller))["id"]
    if not requested:
        return mine
    partner_id = parse_id(requested, "partner_id")
    if partner_id != mine and not await store.is_descendant(session, mine, partner_id):
        raise PermissionDenied(
            "the partner is outside the caller's subtree", reason="PARTNER_NOT_IN_SUBTREE"
        )
    return partner_id
