"""The authenticated caller of the current RPC."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from pipworks_platform.errors import Unauthenticated

USER = "user"
SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: str
    roles: frozenset[str]
    aal: int
    session_id: str | None
    mfa_enabled: bool
    token_id: str
    expires_at: datetime

    @property
    def is_service(self) -> bool:
        return self.kind == SERVICE

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)


_current: ContextVar[Principal | None] = ContextVar("pipworks_principal", default=None)


def current_principal() -> Principal | None:
    """The caller of the RPC being served, or None for a public call without a token."""
    return _current.get()


def require_principal() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("authentication required", reason="TOKEN_MISSING")
    return principal


def bind_principal(principal: Principal | None) -> object:
    """Set the caller for the current context; returns a token for :func:`unbind_principal`."""
    return _current.set(principal)


def unbind_principal(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
