"""Trading accounts as the bridge knows them, and the rules about changing them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class GroupTerms:
    """What a platform group allows: its currency and leverage range."""

    name: str
    currency: str
    currency_digits: int
    leverage_min: int
    leverage_max: int

    def allows_leverage(self, leverage: int) -> bool:
        return self.leverage_min <= leverage <= self.leverage_max


@dataclass(frozen=True)
class Rights:
    """What an account may do; anti-fraud and dealers switch these off."""

    trading: bool = True
    withdrawals: bool = True


@dataclass(frozen=True)
class TradingAccount:
    server: str
    login: int
    user_id: uuid.UUID
    group: str
    currency: str
    currency_digits: int
    leverage: int
    rights: Rights
    opened_at: datetime

    def with_rights(self, rights: Rights) -> TradingAccount:
        return replace(self, rights=rights)

    def with_leverage(self, leverage: int) -> TradingAccount:
        return replace(self, leverage=leverage)


def group_in_scope(group: str, prefix: str) -> bool:
    """The bridge manages only groups under the server's configured prefix."""
    return group.lower().startswith(prefix.lower())


def restricted(rights: Rights, *, trading: bool, withdrawals: bool) -> Rights:
    """Rights after a restriction: the named rights are taken away, others kept."""
    return Rights(
        trading=rights.trading and not trading,
        withdrawals=rights.withdrawals and not withdrawals,
    )


def unrestricted(rights: Rights, *, trading: bool, withdrawals: bool) -> Rights:
    """Rights after a restriction is lifted: the named rights come back."""
    return Rights(trading=rights.trading or trading, withdrawals=rights.withdrawals or withdrawals)
