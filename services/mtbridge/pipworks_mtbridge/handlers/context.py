"""What every use case works with: the unit of work, the trading servers, policy, clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipworks_mtbridge.domain.accounts import TradingAccount, group_in_scope
from pipworks_mtbridge.domain.margin import MarginPolicy
from pipworks_mtbridge.domain.ports import TradingPlatform
from pipworks_platform.db import UnitOfWorkFactory
from pipworks_platform.errors import NotFound, PermissionDenied

STAFF_ROLES = frozenset({"dealer", "admin"})


@dataclass(frozen=True)
class TradingServer:
    """A configured server: its name, the groups the bridge manages there, its platform."""

    name: str
    group_prefix: str
    platform: TradingPlatform

    @property
    def group_mask(self) -> str:
        return f"{self.group_prefix}*"

    def manages(self, group: str) -> bool:
        return group_in_scope(group, self.group_prefix)


@dataclass(frozen=True)
class KycAccountPlan:
    """The live account opened for a client when KYC approves them."""

    server: str
    group: str
    leverage: int


@dataclass(frozen=True)
class BridgeConfig:
    margin: MarginPolicy
    kyc_account: KycAccountPlan | None = None
    sync_overlap_seconds: float = 2.0
    sync_batch_size: int = 500


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user (client or staff) or a service account."""

    subject: str
    roles: frozenset[str]

    @property
    def is_staff(self) -> bool:
        return not self.roles.isdisjoint(STAFF_ROLES)

    @property
    def user_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            return None

    def require_access(self, user_id: uuid.UUID) -> None:
        """Clients act on their own accounts only; staff on every account."""
        if not self.is_staff and self.user_id != user_id:
            raise PermissionDenied(
                "the account belongs to another user", reason="ACCOUNT_NOT_OWNED"
            )

    def require_account(
        self, account: TradingAccount | None, server: str, login: int
    ) -> TradingAccount:
        """Permission before existence: a client learns nothing about others' logins."""
        if account is None:
            if not self.is_staff:
                raise PermissionDenied(
                    "the account belongs to another user", reason="ACCOUNT_NOT_OWNED"
                )
            raise NotFound("trading account", f"{server}:{login}", reason="ACCOUNT_NOT_FOUND")
        self.require_access(account.user_id)
        return account


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    uow: UnitOfWorkFactory
    servers: Mapping[str, TradingServer]
    config: BridgeConfig
    clock: Callable[[], datetime] = field(default=utc_now)

    def server(self, name: str) -> TradingServer:
        server = self.servers.get(name)
        if server is None:
            raise NotFound(
                "trading server", name, reason="SERVER_NOT_FOUND", metadata={"server": name}
            )
        return server
