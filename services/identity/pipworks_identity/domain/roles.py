"""Roles, the two kinds of account, and the rules for granting and revoking roles."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pipworks_platform.errors import FailedPrecondition


class Role(StrEnum):
    """A named set of permissions; the value is what access tokens carry."""

    CLIENT = "client"
    IB = "ib"
    SUPPORT = "support"
    COMPLIANCE = "compliance"
    DEALER = "dealer"
    ADMIN = "admin"


class UserKind(StrEnum):
    """Clients register themselves; staff are created by an admin."""

    CLIENT = "client"
    STAFF = "staff"


CLIENT_ROLES = frozenset({Role.CLIENT, Role.IB})
STAFF_ROLES = frozenset({Role.SUPPORT, Role.COMPLIANCE, Role.DEALER, Role.ADMIN})


def roles_for_kind(kind: UserKind) -> frozenset[Role]:
    """Roles an account of ``kind`` may hold: staff powers never reach client accounts."""
    return CLIENT_ROLES if kind is UserKind.CLIENT else STAFF_ROLES


def check_grant(kind: UserKind, role: Role) -> None:
    """Raise unless ``role`` may be granted to an account of ``kind``."""
    if role not in roles_for_kind(kind):
        raise FailedPrecondition(
            f"the {role} role cannot be granted to a {kind} account",
            reason="ROLE_NOT_ALLOWED_FOR_ACCOUNT_KIND",
        )


def check_revoke(held: Iterable[Role], role: Role, *, other_admins: int) -> None:
    """Raise unless ``role`` may be taken away from an account holding ``held``.

    An account keeps at least one role (an account without any is unusable, which is
    a lock, not a role change), and the last admin cannot be demoted, or nobody could
    administer roles any more.
    """
    remaining = set(held) - {role}
    if not remaining:
        raise FailedPrecondition(
            "an account must keep at least one role", reason="LAST_ROLE_OF_ACCOUNT"
        )
    if role is Role.ADMIN and other_admins == 0:
        raise FailedPrecondition("the last admin cannot be demoted", reason="LAST_ADMIN")
