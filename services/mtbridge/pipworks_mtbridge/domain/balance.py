"""Balance operations: deposits, withdrawals, credit and payouts, made exactly once.

An operation is recorded as pending *before* the platform is called and carries a short
tag in the platform deal's comment. If the bridge dies between the platform call and
its own commit, the retry finds the pending record, looks for a balance deal with that
comment on the platform, and either adopts it or makes the call it never made.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

MAX_COMMENT_LENGTH = 32  # MT5 deal comments hold 32 characters
TAG_HEX_DIGITS = 16


class OperationKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    CREDIT = "credit"
    IB_PAYOUT = "ib_payout"

    @property
    def is_credit(self) -> bool:
        """Credit moves broker credit; every other kind moves the balance."""
        return self is OperationKind.CREDIT


class OperationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"


_LABELS = {
    OperationKind.DEPOSIT: "Deposit",
    OperationKind.WITHDRAWAL: "Withdrawal",
    OperationKind.CREDIT: "Credit",
    OperationKind.IB_PAYOUT: "IB payout",
}


def signed_amount(kind: OperationKind, amount: Decimal) -> Decimal:
    """What the platform applies: withdrawals debit, everything else is as given."""
    return -amount if kind is OperationKind.WITHDRAWAL else amount


def deal_comment(kind: OperationKind, server: str, login: int, key: str) -> str:
    """``"Deposit 1f0c2e9a7b3d4c55"``: readable in the terminal, unique per key and account."""
    digest = hashlib.sha256(f"{server}\x00{login}\x00{kind}\x00{key}".encode()).hexdigest()
    comment = f"{_LABELS[kind]} {digest[:TAG_HEX_DIGITS]}"
    assert len(comment) <= MAX_COMMENT_LENGTH
    return comment


@dataclass(frozen=True)
class PaymentDetails:
    """The payment behind a deposit or withdrawal, as the cashier reported it."""

    method: str
    instrument_fingerprint: str = ""
    country_code: str = ""


@dataclass(frozen=True)
class BalanceOperation:
    id: uuid.UUID
    server: str
    login: int
    kind: OperationKind
    amount: Decimal  # signed, as applied to the platform
    currency: str
    idempotency_key: str
    comment: str
    status: OperationStatus
    created_at: datetime
    deal_ticket: int | None = None
    completed_at: datetime | None = None
    rejection: str | None = None
    payment: PaymentDetails | None = None

    def same_request(self, kind: OperationKind, amount: Decimal) -> bool:
        """A retry must repeat the original request; a reused key with new terms is refused."""
        return self.kind is kind and self.amount == amount
