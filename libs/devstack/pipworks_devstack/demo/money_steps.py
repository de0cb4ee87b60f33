"""Money and the market: deposit, trades, commissions, the rapid in-out, the IB payout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
from google.protobuf.json_format import MessageToDict

from pipworks.antifraud.v1 import antifraud_service_pb2 as af_pb
from pipworks.common.v1 import payment_pb2
from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as bridge_pb
from pipworks_devstack.demo.driver import (
    PAGE,
    RAPID_IN_OUT_RULE,
    RIGHT_TRADE_DISABLED,
    RIGHT_WITHDRAWAL_DISABLED,
    Driver,
)
from pipworks_devstack.demo.results import (
    CENT,
    Account,
    Client,
    CommissionRow,
    Commissions,
    Deposit,
    FraudResponse,
    Partner,
    Payout,
    Staff,
    Trades,
)
from pipworks_devstack.portal import CALL_TIMEOUT
from pipworks_platform.grpc_errors import error_details

__all__ = ["MoneySteps"]


class MoneySteps(Driver):
    """Money in, trades, commissions, anti-fraud's answer to money out, the IB's payout."""

    def deposit(self, staff: Staff, account: Account, amount: Decimal) -> Deposit:
        """The cashier deposits through the bridge; the trading server shows the balance."""
        with self._step("deposit credited") as step:
            done = self._deposit(staff, account, amount, "deposit")
            state = self.bridge.GetAccount(
                bridge_pb.GetAccountRequest(server=account.server, login=account.login),
                metadata=staff.admin.metadata,
                timeout=CALL_TIMEOUT,
            ).state
            step.ids.update(operation=done.operation_id, deal=str(done.deal_ticket))
            step.amounts.update(deposit=f"{amount} USD", balance=f"{state.balance} USD")
            return done

    def trading(
        self,
        client: Client,
        account: Account,
        *,
        symbol: str = "EURUSD",
        lots: Decimal,
        round_trips: int,
    ) -> Trades:
        """The market: the simulator opens and closes positions for the client; the
        bridge mirrors every deal."""
        with self._step("client traded on the simulator") as step:
            positions, openings, closings = [], [], []
            for _ in range(round_trips):
                opened = self.sim(
                    "POST",
                    "/sim/positions",
                    {
                        "login": account.login,
                        "symbol": symbol,
                        "action": "buy",
                        "volume": str(lots),
                    },
                )["answer"]
                position = int(opened["PositionID"])
                closed = self.sim("POST", f"/sim/positions/{position}/close")["answer"]
                positions.append(position)
                openings.append(int(opened["Deal"]))
                closings.append(int(closed["Deal"]))
            wanted = set(openings + closings)

            def mirrored() -> bool:
                reply = self.bridge.ListDeals(
                    bridge_pb.ListDealsRequest(
                        server=account.server, login=account.login, page=PAGE
                    ),
                    metadata=client.session.metadata,
                    timeout=CALL_TIMEOUT,
                )
                return wanted <= {deal.ticket for deal in reply.deals}

            self._wait("the deals in the bridge's ListDeals", mirrored)
            step.ids.update(positions=",".join(map(str, positions)))
            step.ids.update(deals=",".join(map(str, sorted(wanted))))
            step.amounts.update(volume=f"{len(positions)} x {lots} lot {symbol}")
            return Trades(symbol, lots, tuple(positions), tuple(openings), tuple(closings))

    def commissions(self, partners: list[Partner], trades: Trades) -> Commissions:
        """Each closing deal accrues to every level of the chain, each row explained."""
        with self._step("commissions accrued to both IB levels") as step:
            rows: list[CommissionRow] = []
            for level, partner in enumerate(partners, start=1):

                def accrued(partner: Partner = partner) -> list[ib_pb.LedgerEntry] | None:
                    reply = self.ib.ListCommissions(
                        ib_pb.ListCommissionsRequest(page=PAGE),
                        metadata=partner.session.metadata,
                        timeout=CALL_TIMEOUT,
                    )
                    entries = [e for e in reply.entries if e.deal in trades.closing_tickets]
                    return entries if len(entries) >= len(trades.closing_tickets) else None

                for entry in self._wait(f"level-{level} commission rows", accrued):
                    rows.append(
                        CommissionRow(
                            entry.entry_id,
                            entry.partner_id,
                            entry.level,
                            entry.deal,
                            Decimal(entry.amount),
                            MessageToDict(entry.explanation),
                        )
                    )
            found = Commissions(tuple(rows))
            for level, partner in enumerate(partners, start=1):
                step.ids[f"L{level}"] = partner.partner_id
                step.amounts[f"L{level}"] = f"{found.total(level).quantize(CENT)} USD"
                example = found.of_level(level)[0].explanation
                step.amounts[f"L{level} why"] = str(example.get("computation", ""))
            return found

    def rapid_withdrawal(
        self, staff: Staff, client: Client, account: Account, amount: Decimal
    ) -> FraudResponse:
        """Most of the deposit straight back out: anti-fraud alerts, opens a case and
        restricts the client. The broker's policy here freezes trading as well as
        withdrawals on rapid in-out (a new version of the built-in rule, which blocks
        withdrawals only); the trading server shows both on the MT5 user."""
        with self._step("rapid in-out: alert, restriction, trading disabled") as step:
            rule = self._freeze_trading_on(RAPID_IN_OUT_RULE, staff)
            withdrawn = self.bridge.Withdraw(
                bridge_pb.WithdrawRequest(
                    server=account.server,
                    login=account.login,
                    amount=str(amount),
                    idempotency_key=self._key("withdrawal"),
                    payment=payment_pb2.PaymentDetails(
                        method="card",
                        instrument_fingerprint=self._key("deposit-card"),
                        country_code="CY",
                    ),
                ),
                metadata=client.session.metadata,
                timeout=CALL_TIMEOUT,
            ).operation
            officer = staff.officer.metadata

            def alert() -> af_pb.Alert | None:
                reply = self.antifraud.ListAlerts(
                    af_pb.ListAlertsRequest(user_id=client.user_id, rule_id=RAPID_IN_OUT_RULE),
                    metadata=officer,
                    timeout=CALL_TIMEOUT,
                )
                return reply.alerts[0] if reply.alerts else None

            raised = self._wait(f"a {RAPID_IN_OUT_RULE} alert", alert)

            def automatic() -> af_pb.Restriction | None:
                reply = self.antifraud.ListRestrictions(
                    af_pb.ListRestrictionsRequest(user_id=client.user_id, active_only=True),
                    metadata=officer,
                    timeout=CALL_TIMEOUT,
                )
                found = [r for r in reply.restrictions if r.rule_id == RAPID_IN_OUT_RULE]
                return found[0] if found else None

            restriction = self._wait("the rule's restriction", automatic)
            wanted = RIGHT_TRADE_DISABLED | RIGHT_WITHDRAWAL_DISABLED

            def rights() -> int | None:
                value = int(self.sim_user(account.login)["user"]["Rights"])
                return value if value & wanted == wanted else None

            value = self._wait("trading disabled on the MT5 user", rights)
            step.ids.update(
                alert=raised.alert_id,
                case=raised.case_id,
                restriction=restriction.restriction_id,
                rule=f"{rule.rule_id} v{rule.version}",
            )
            step.amounts.update(withdrawn=f"{amount} USD", rights=hex(value))
            return FraudResponse(
                withdrawn.operation_id,
                amount,
                raised.alert_id,
                raised.case_id,
                restriction.restriction_id,
                rule.version,
                value,
                bool(value & RIGHT_TRADE_DISABLED),
                bool(value & RIGHT_WITHDRAWAL_DISABLED),
            )

    def _freeze_trading_on(self, rule_id: str, staff: Staff) -> af_pb.Rule:
        """The rule as it stands, or a new version of it that also restricts trading."""
        officer = staff.officer.metadata
        rule = self.antifraud.GetRule(
            af_pb.GetRuleRequest(rule_id=rule_id), metadata=officer, timeout=CALL_TIMEOUT
        ).rule
        if af_pb.RULE_ACTION_RESTRICT_TRADING in rule.actions:
            return rule
        changed = af_pb.Rule()
        changed.CopyFrom(rule)
        changed.actions.append(af_pb.RULE_ACTION_RESTRICT_TRADING)
        return self.antifraud.UpdateRule(
            af_pb.UpdateRuleRequest(rule=changed, expected_version=rule.version),
            metadata=officer,
            timeout=CALL_TIMEOUT,
        ).rule

    def ib_payout(self, staff: Staff, ib: Partner, account: Account) -> Payout:
        """Statement for the period, approved to the IB's own account, paid by the bridge."""
        with self._step("IB statement approved and paid") as step:
            before = self._balance(account)
            start = self.started_at - timedelta(minutes=1)
            end = datetime.now(UTC).replace(microsecond=0)
            request = ib_pb.CreateStatementRequest(partner_id=ib.partner_id)
            request.period_start.FromDatetime(start)
            request.period_end.FromDatetime(end)
            statement = self.ib.CreateStatement(
                request, metadata=staff.admin.metadata, timeout=CALL_TIMEOUT
            ).statement

            def approve() -> ib_pb.Statement | None:
                try:
                    return self.ib.ApproveStatement(
                        ib_pb.ApproveStatementRequest(
                            statement_id=statement.statement_id,
                            server=account.server,
                            login=account.login,
                            idempotency_key=self._key("statement"),
                        ),
                        metadata=staff.admin.metadata,
                        timeout=CALL_TIMEOUT,
                    ).statement
                except grpc.RpcError as exc:
                    # The ledger learns the IB's login from the bridge's event.
                    if error_details(exc).reason == "ACCOUNT_NOT_PARTNERS":
                        return None
                    raise

            approved = self._wait("the IB's account known to the ledger", approve)

            def paid() -> ib_pb.Statement | None:
                reply = self.ib.ListStatements(
                    ib_pb.ListStatementsRequest(page=PAGE),
                    metadata=ib.session.metadata,
                    timeout=CALL_TIMEOUT,
                )
                for found in reply.statements:
                    if (
                        found.statement_id == statement.statement_id
                        and found.status == ib_pb.STATEMENT_STATUS_PAID
                    ):
                        return found
                return None

            settled = self._wait("the statement marked paid", paid)
            total = Decimal(settled.total)
            after = self._wait(
                "the payout on the IB's account",
                lambda: self._balance_at_least(account, before + total),
            )
            step.ids.update(
                statement=statement.statement_id,
                payout=approved.payout_id,
                login=str(account.login),
            )
            step.amounts.update(
                paid=f"{total.quantize(CENT)} {settled.currency}", balance=f"{before} -> {after}"
            )
            return Payout(
                statement.statement_id,
                approved.payout_id,
                total,
                account.login,
                before,
                after,
                settled.entries,
                {line.key: line.amount for line in settled.by_level},
            )
