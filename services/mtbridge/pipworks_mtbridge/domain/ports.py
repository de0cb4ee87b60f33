"""The port every trading platform plugs into (MT5 Web API first; MT4 and others later).

Adapters raise :mod:`pipworks_mtbridge.domain.errors` for every failure, so handlers
never see a platform-specific exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from pipworks_mtbridge.domain.accounts import GroupTerms, Rights
from pipworks_mtbridge.domain.deals import Deal


@dataclass(frozen=True)
class AccountState:
    login: int
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    free_margin: Decimal
    margin_level: Decimal  # percent; 0 when no margin is held

    @property
    def level_at_risk(self) -> Decimal | None:
        """The margin level, or None when no margin is held (nothing can be called)."""
        return self.margin_level if self.margin > 0 else None


@dataclass(frozen=True)
class Position:
    position_id: int
    login: int
    symbol: str
    action: int
    volume_lots: Decimal
    open_price: Decimal
    current_price: Decimal
    profit: Decimal
    swap: Decimal
    opened_at: datetime


@dataclass(frozen=True)
class NewAccount:
    group: str
    leverage: int
    name: str
    email: str
    password: str
    investor_password: str


class TradingPlatform(Protocol):
    """One trading server, reached through its manager interface."""

    async def group_terms(self, group: str) -> GroupTerms: ...

    async def open_account(self, account: NewAccount) -> int:
        """Create the login; return its number."""
        ...

    async def account_state(self, login: int) -> AccountState: ...

    async def account_states(self, logins: Sequence[int]) -> list[AccountState]: ...

    async def set_leverage(self, login: int, leverage: int) -> None: ...

    async def set_rights(self, login: int, rights: Rights) -> None: ...

    async def apply_balance(
        self, login: int, amount: Decimal, comment: str, *, credit: bool
    ) -> int:
        """Apply a signed balance (or credit) operation; return the deal ticket."""
        ...

    async def deals(
        self,
        *,
        since: datetime,
        until: datetime,
        logins: Sequence[int] | None = None,
        group_mask: str | None = None,
    ) -> list[Deal]:
        """Deals executed in [since, until], by logins or a group mask, in time order."""
        ...

    async def positions(self, logins: Sequence[int]) -> list[Position]: ...

    async def close(self) -> None:
        """Release the connection; the platform is not used afterwards."""
        ...
