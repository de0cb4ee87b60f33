"""The golden path in order, with the amounts that make its numbers predictable."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pipworks_devstack.demo.golden_path import GoldenPath
from pipworks_devstack.demo.results import (
    Account,
    Client,
    Commissions,
    Deposit,
    FraudResponse,
    KycApplication,
    KycDecision,
    Partner,
    Payout,
    Plan,
    Staff,
    Trades,
)

__all__ = ["Amounts", "Outcome", "run_golden_path"]


@dataclass(frozen=True)
class Amounts:
    """Chosen so the rapid in-out rule fires: the withdrawal is at least 80% of the
    week's deposits and the client trades under 1 lot (both sides of each round trip
    count), well under the large-transaction threshold."""

    ib_funding: Decimal = Decimal("1000.00")
    deposit: Decimal = Decimal("1000.00")
    lots: Decimal = Decimal("0.2")
    round_trips: int = 2
    withdrawal: Decimal = Decimal("900.00")


@dataclass(frozen=True)
class Outcome:
    staff: Staff
    plan: Plan
    ib: Partner
    sub_ib: Partner
    ib_account: Account
    client: Client
    application: KycApplication
    decision: KycDecision
    account: Account
    deposit: Deposit
    trades: Trades
    commissions: Commissions
    fraud: FraudResponse
    payout: Payout


def run_golden_path(path: GoldenPath, amounts: Amounts = Amounts()) -> Outcome:
    """Every step, the simulator's ambient activity paused meanwhile."""
    with path.quiet_market():
        staff = path.staff()
        plan = path.commission_plan(staff)
        ib = path.ib_partner(staff, plan)
        sub_ib = path.sub_ib(staff, ib)
        ib_account = path.ib_account(staff, ib, amounts.ib_funding)
        client = path.client_registration(sub_ib)
        client = path.two_factor(client)
        application = path.kyc_submission(client)
        decision = path.kyc_approval(staff, application, client)
        account = path.live_account(client)
        deposit = path.deposit(staff, account, amounts.deposit)
        trades = path.trading(client, account, lots=amounts.lots, round_trips=amounts.round_trips)
        commissions = path.commissions([sub_ib, ib], trades)
        fraud = path.rapid_withdrawal(staff, client, account, amounts.withdrawal)
        payout = path.ib_payout(staff, ib, ib_account)
    return Outcome(
        staff,
        plan,
        ib,
        sub_ib,
        ib_account,
        client,
        application,
        decision,
        account,
        deposit,
        trades,
        commissions,
        fraud,
        payout,
    )
