"""What each golden-path step produced: the ids involved and the amounts, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from pipworks_devstack.portal import Session

__all__ = [
    "Account",
    "Client",
    "CommissionRow",
    "Commissions",
    "Deposit",
    "FraudResponse",
    "KycApplication",
    "KycDecision",
    "Partner",
    "Payout",
    "Plan",
    "Staff",
    "StepRecord",
    "Trades",
]

CENT = Decimal("0.01")


@dataclass(frozen=True)
class StepRecord:
    """One line of the summary table."""

    number: int
    title: str
    ids: dict[str, str]
    amounts: dict[str, str]
    elapsed: float


@dataclass(frozen=True)
class Staff:
    admin: Session
    officer: Session


@dataclass(frozen=True)
class Plan:
    """A two-level per-lot plan: ``rate`` per lot closed, shared ``level_percents``."""

    plan_id: str
    version: int
    currency: str
    rate_per_lot: Decimal
    level_percents: tuple[Decimal, ...]

    def expected(self, lots: Decimal) -> dict[int, Decimal]:
        """What each level earns from one closing deal of ``lots`` (rounded half-even)."""
        pool = lots * self.rate_per_lot
        return {
            level: (pool * percent / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
            for level, percent in enumerate(self.level_percents, start=1)
        }


@dataclass(frozen=True)
class Partner:
    partner_id: str
    user_id: str
    session: Session
    referral_code: str
    parent_partner_id: str


@dataclass(frozen=True)
class Client:
    user_id: str
    session: Session
    referred_by: str  # the partner the referral code attributed the client to


@dataclass(frozen=True)
class KycApplication:
    application_id: str
    document_ids: tuple[str, ...]
    template: str


@dataclass(frozen=True)
class KycDecision:
    application_id: str
    level: int
    risk: str
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class Account:
    server: str
    login: int
    group: str
    currency: str
    user_id: str


@dataclass(frozen=True)
class Deposit:
    operation_id: str
    deal_ticket: int
    amount: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Trades:
    symbol: str
    lots_per_trade: Decimal
    position_ids: tuple[int, ...]
    opening_tickets: tuple[int, ...]
    closing_tickets: tuple[int, ...]

    @property
    def lots_traded(self) -> Decimal:
        """Both sides of every round trip, as anti-fraud counts traded volume."""
        return self.lots_per_trade * 2 * len(self.position_ids)


@dataclass(frozen=True)
class CommissionRow:
    entry_id: str
    partner_id: str
    level: int
    deal: int
    amount: Decimal
    explanation: dict[str, object]


@dataclass(frozen=True)
class Commissions:
    rows: tuple[CommissionRow, ...]

    def of_level(self, level: int) -> list[CommissionRow]:
        return [row for row in self.rows if row.level == level]

    def total(self, level: int) -> Decimal:
        return sum((row.amount for row in self.of_level(level)), Decimal(0))


@dataclass(frozen=True)
class FraudResponse:
    withdrawal_operation_id: str
    withdrawn: Decimal
    alert_id: str
    case_id: str
    restriction_id: str  # placed by the rule: withdrawals and trading
    rule_version: int  # the rule version that fired
    rights: int  # the MT5 user's Rights once the restriction reached the simulator
    sim_trade_disabled: bool
    sim_withdrawal_disabled: bool


@dataclass(frozen=True)
class Payout:
    statement_id: str
    payout_id: str
    total: Decimal
    login: int
    balance_before: Decimal
    balance_after: Decimal
    entries: int = 0
    by_level: dict[str, str] = field(default_factory=dict)
