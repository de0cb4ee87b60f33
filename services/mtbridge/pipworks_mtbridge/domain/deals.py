"""Deals mirrored from a trading server, and how they become events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

# Fixed namespace: event ids of deals are uuid5(namespace, "<server>:<ticket>"), the
# same on every replica and after every restart.
DEAL_EVENT_NAMESPACE = uuid.UUID("5f0b7a52-4c1e-5d0e-9a55-6d74627269dd")


class DealAction(IntEnum):
    """MT5 deal actions the bridge tells apart (others are reported as they come)."""

    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3


class DealEntry(IntEnum):
    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


@dataclass(frozen=True)
class Deal:
    ticket: int
    login: int
    action: int
    entry: int
    symbol: str
    volume_lots: Decimal
    price: Decimal
    profit: Decimal
    commission: Decimal
    swap: Decimal
    time: datetime
    position_id: int
    comment: str

    @property
    def is_trade(self) -> bool:
        return self.action in (DealAction.BUY, DealAction.SELL)

    @property
    def is_money(self) -> bool:
        """Balance and credit deals: what deposits, withdrawals and payouts produce."""
        return self.action in (DealAction.BALANCE, DealAction.CREDIT)

    @property
    def order_key(self) -> tuple[datetime, int]:
        return (self.time, self.ticket)


def deal_event_id(server: str, ticket: int) -> uuid.UUID:
    return uuid.uuid5(DEAL_EVENT_NAMESPACE, f"{server}:{ticket}")
