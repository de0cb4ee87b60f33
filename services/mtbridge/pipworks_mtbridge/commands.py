"""Commands: validated inputs of the use cases, independent of the wire format."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pipworks_mtbridge.adapters.repositories import AccountCursor, DealCursor
from pipworks_mtbridge.domain.balance import OperationKind, PaymentDetails


@dataclass(frozen=True)
class AccountRef:
    server: str
    login: int


@dataclass(frozen=True)
class OpenAccount:
    user_id: uuid.UUID
    server: str
    group: str
    leverage: int
    currency: str
    request_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ListAccounts:
    user_id: uuid.UUID | None
    page_size: int
    after: AccountCursor | None = None


@dataclass(frozen=True)
class ChangeLeverage:
    account: AccountRef
    leverage: int


@dataclass(frozen=True)
class SetTradingEnabled:
    account: AccountRef
    enabled: bool


@dataclass(frozen=True)
class MoveMoney:
    account: AccountRef
    kind: OperationKind
    amount: Decimal  # as requested: positive, except a negative Credit (credit out)
    idempotency_key: str
    payment: PaymentDetails | None = None


@dataclass(frozen=True)
class Scope:
    """Whose deals or positions: a user's (None: the caller's) or one account's."""

    user_id: uuid.UUID | None
    account: AccountRef | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class ListDeals:
    scope: Scope
    page_size: int
    after: DealCursor | None = None


@dataclass(frozen=True)
class PositionCursor:
    server: str
    login: int
    position_id: int


@dataclass(frozen=True)
class ListPositions:
    scope: Scope
    page_size: int
    after: PositionCursor | None = None
