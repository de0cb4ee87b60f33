"""The user account as the domain sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from pipworks_identity.domain.roles import Role, UserKind, check_grant, check_revoke


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    kind: UserKind
    roles: frozenset[Role]
    country_code: str | None
    created_at: datetime
    email_verified_at: datetime | None = None
    totp_enabled: bool = False
    kyc_level: int = 0
    locked_until: datetime | None = None

    @property
    def role_names(self) -> list[str]:
        """Roles as access tokens carry them: lower-case, sorted for stable tokens."""
        return sorted(role.value for role in self.roles)

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def with_role(self, role: Role) -> User:
        """This account with ``role`` granted (unchanged when it already holds it)."""
        check_grant(self.kind, role)
        return replace(self, roles=self.roles | {role})

    def without_role(self, role: Role, *, other_admins: int) -> User:
        """This account with ``role`` revoked (unchanged when it does not hold it)."""
        if role not in self.roles:
            return self
        check_revoke(self.roles, role, other_admins=other_admins)
        return replace(self, roles=self.roles - {role})
