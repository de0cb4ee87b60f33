"""The golden path through the gateway on the suite ``make run`` starts, step by step.

The steps are the ones ``make demo`` prints (``pipworks_devstack.demo``); each step
already waits for its own effect, and this test then checks every observable effect
independently: what the partners, the client, the staff and the trading server see.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from pipworks.antifraud.v1 import antifraud_service_pb2 as af_pb
from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.kyc.v1 import kyc_service_pb2 as kyc_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as bridge_pb
from pipworks_devstack.demo import Amounts, GoldenPath
from pipworks_devstack.demo.driver import (
    LIVE_GROUP,
    LIVE_SERVER,
    PAGE,
    RAPID_IN_OUT_RULE,
    RIGHT_TRADE_DISABLED,
    RIGHT_WITHDRAWAL_DISABLED,
)
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import Portal, TotpDevice
from pipworks_devstack.testing import free_port
from pipworks_platform.grpc_errors import error_details

pytestmark = pytest.mark.xdist_group("e2e-test_golden_path")

AMOUNTS = Amounts()


@pytest.fixture(scope="module")
def full_suite_env() -> dict[str, dict[str, str]]:
    """The simulator's ambient trading on, as in ``make run``: the path pauses it."""
    return {"mt5sim": {"MT5SIM_AMBIENT_DEALS_PER_SECOND": "2"}}


@pytest.fixture(scope="module")
def channel(full_suite: LocalSuite) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(full_suite.gateway) as channel:
        yield channel


@pytest.fixture(scope="module")
def admin_totp_uri(full_suite: LocalSuite, channel: grpc.Channel) -> str:
    """The admin enrolled TOTP earlier (as a first ``make demo`` leaves it)."""
    admin = Portal(channel).sign_in(full_suite.admin_email, full_suite.admin_password)
    assert admin.totp is not None
    return admin.totp.uri


def _ambient(path: GoldenPath) -> list[dict]:
    return [a for a in path.sim("GET", "/sim/activity")["answer"] if a["logins"] == "*"]


def test_golden_path_from_referral_to_ib_payout(
    full_suite: LocalSuite, channel: grpc.Channel, admin_totp_uri: str
):
    # A device of its own from the URI, as a later run would have; the code of the
    # current 30-second step was probably just used, which the path must get past.
    path = GoldenPath(
        channel,
        full_suite.sim_url,
        full_suite.admin_email,
        full_suite.admin_password,
        admin_totp=TotpDevice(admin_totp_uri),
    )
    # The simulator trades every funded login in the background, as in make run.
    assert any(a["running"] for a in _ambient(path))

    with path.quiet_market():
        assert not any(a["running"] for a in _ambient(path))

        staff = path.staff()
        assert path.enrolled_admin_totp is None  # signed in with the existing device
        assert staff.admin.aal == 2
        assert staff.officer.aal == 2
        assert staff.officer.roles == ["compliance"]

        plan = path.commission_plan(staff)
        expected = plan.expected(AMOUNTS.lots)
        assert expected == {1: Decimal("3.50"), 2: Decimal("1.50")}

        # An IB and a sub-IB under it, each with a referral code.
        ib = path.ib_partner(staff, plan)
        sub = path.sub_ib(staff, ib)
        assert "ib" in ib.session.roles
        assert "ib" in sub.session.roles
        mine = path.ib.GetMyPartner(ib_pb.GetMyPartnerRequest(), metadata=sub.session.metadata)
        assert mine.partner.parent_partner_id == ib.partner_id
        assert mine.partner.status == ib_pb.PARTNER_STATUS_ACTIVE
        assert mine.partner.depth == 1
        assert [link.code for link in mine.links] == [sub.referral_code]
        top = path.ib.GetPartner(
            ib_pb.GetPartnerRequest(partner_id=ib.partner_id), metadata=staff.admin.metadata
        )
        assert top.partner.plan_id == plan.plan_id
        ib_account = path.ib_account(staff, ib, AMOUNTS.ib_funding)
        assert ib_account.server == LIVE_SERVER

        # The client registers with the sub-IB's code: attributed to the sub-IB.
        client = path.client_registration(sub)
        assert client.referred_by == sub.partner_id
        clients = path.ib.ListMyClients(
            ib_pb.ListMyClientsRequest(page=PAGE), metadata=sub.session.metadata
        ).clients
        assert [(c.client_user_id, c.referral_code) for c in clients] == [
            (client.user_id, sub.referral_code)
        ]
        stats = path.ib.GetLinkStats(ib_pb.GetLinkStatsRequest(), metadata=sub.session.metadata)
        assert stats.stats[0].registrations == 1

        # Two factors: the token is aal2 and a password alone no longer logs in.
        client = path.two_factor(client)
        assert client.session.aal == 2
        challenge = path.identity.Login(
            identity_pb.LoginRequest(email=client.session.email, password=client.session.password)
        )
        assert challenge.mfa_challenge_token
        assert not challenge.tokens.access_token

        # KYC: submitted with documents, approved by the compliance officer.
        application = path.kyc_submission(client)
        assert len(application.document_ids) == 2  # identity scan and proof of address
        decision = path.kyc_approval(staff, application, client)
        status = path.kyc.GetMyStatus(kyc_pb.GetMyStatusRequest(), metadata=client.session.metadata)
        assert status.application.state == kyc_pb.APPLICATION_STATE_APPROVED
        assert status.level == decision.level == 2  # both documents: full trading
        reviewed = path.kyc.GetApplication(
            kyc_pb.GetApplicationRequest(application_id=application.application_id),
            metadata=staff.officer.metadata,
        )
        assert reviewed.application.reviewer_id == staff.officer.user_id
        assert {d.document_id for d in reviewed.documents} == set(application.document_ids)

        # The bridge opened the live account by itself, on the trading server.
        account = path.live_account(client)
        assert (account.server, account.group, account.currency) == (
            LIVE_SERVER,
            LIVE_GROUP,
            "USD",
        )
        listed = path.bridge.ListAccounts(
            bridge_pb.ListAccountsRequest(user_id=client.user_id), metadata=staff.admin.metadata
        ).accounts
        assert [a.login for a in listed] == [account.login]
        assert listed[0].trading_enabled
        on_sim = path.sim_user(account.login)
        assert on_sim["user"]["Group"] == LIVE_GROUP
        assert not int(on_sim["user"]["Rights"]) & RIGHT_TRADE_DISABLED

        # Deposit through the bridge: the balance on the trading server and the bridge.
        deposit = path.deposit(staff, account, AMOUNTS.deposit)
        assert deposit.deal_ticket > 0
        state = path.bridge.GetAccount(
            bridge_pb.GetAccountRequest(server=account.server, login=account.login),
            metadata=client.session.metadata,
        ).state
        assert Decimal(state.balance) == AMOUNTS.deposit
        assert Decimal(path.sim_user(account.login)["account"]["Balance"]) == AMOUNTS.deposit

        # The market trades for the client; every deal is mirrored.
        trades = path.trading(client, account, lots=AMOUNTS.lots, round_trips=AMOUNTS.round_trips)
        assert trades.lots_traded < 1  # what keeps the rapid in-out rule's condition true
        deals = {
            d.ticket: d
            for d in path.bridge.ListDeals(
                bridge_pb.ListDealsRequest(user_id=client.user_id, page=PAGE),
                metadata=client.session.metadata,
            ).deals
        }
        for ticket in trades.opening_tickets + trades.closing_tickets:
            assert deals[ticket].symbol == "EURUSD"
            assert Decimal(deals[ticket].volume) == AMOUNTS.lots
            assert deals[ticket].login == account.login

        # Commission for both levels on every closing deal, to the cent, explained.
        commissions = path.commissions([sub, ib], trades)
        for level, partner in ((1, sub), (2, ib)):
            rows = commissions.of_level(level)
            assert sorted(r.deal for r in rows) == sorted(trades.closing_tickets)
            for row in rows:
                assert row.partner_id == partner.partner_id
                assert row.amount == expected[level]
                explanation = row.explanation
                assert explanation["formula"] == "volume x rate per lot"
                assert explanation["computation"] == (
                    f"{plan.level_percents[level - 1]}% of {AMOUNTS.lots * plan.rate_per_lot}"
                )
                assert Decimal(str(explanation["amount"])) == expected[level]
                # The chain up to the row's partner, never above it.
                assert explanation["chain"] == [sub.partner_id, ib.partner_id][:level]
        assert commissions.total(2) == expected[2] * AMOUNTS.round_trips

        # Money straight back out: alert, case, restriction; the trading server shows it.
        fraud = path.rapid_withdrawal(staff, client, account, AMOUNTS.withdrawal)
        alerts = path.antifraud.ListAlerts(
            af_pb.ListAlertsRequest(user_id=client.user_id), metadata=staff.officer.metadata
        ).alerts
        assert [a.alert_id for a in alerts] == [fraud.alert_id]
        assert alerts[0].case_id == fraud.case_id
        restrictions = {
            r.restriction_id: r
            for r in path.antifraud.ListRestrictions(
                af_pb.ListRestrictionsRequest(user_id=client.user_id, active_only=True),
                metadata=staff.officer.metadata,
            ).restrictions
        }
        [restriction] = restrictions.values()
        assert restriction.restriction_id == fraud.restriction_id
        assert restriction.rule_id == RAPID_IN_OUT_RULE
        assert restriction.withdrawals
        assert restriction.trading
        assert alerts[0].rule_version == fraud.rule_version
        assert fraud.sim_trade_disabled
        assert fraud.sim_withdrawal_disabled
        assert fraud.rights & RIGHT_TRADE_DISABLED
        assert fraud.rights & RIGHT_WITHDRAWAL_DISABLED
        bridge_view = path.bridge.GetAccount(
            bridge_pb.GetAccountRequest(server=account.server, login=account.login),
            metadata=staff.admin.metadata,
        ).account
        assert not bridge_view.trading_enabled
        assert not bridge_view.withdrawals_enabled
        refused_deal = path.sim("POST", "/sim/deals", {"login": account.login, "count": 1})
        assert refused_deal["retcode"].startswith("10017")  # MT5: trade disabled
        with pytest.raises(grpc.RpcError) as refused:
            path.bridge.Withdraw(
                bridge_pb.WithdrawRequest(
                    server=account.server,
                    login=account.login,
                    amount="10.00",
                    idempotency_key=f"demo-{path.run_id}-second-withdrawal",
                ),
                metadata=client.session.metadata,
            )
        assert error_details(refused.value).reason == "WITHDRAWALS_DISABLED"

        # The IB's statement: approved, paid by the bridge into the IB's own account.
        payout = path.ib_payout(staff, ib, ib_account)
        assert payout.total == expected[2] * AMOUNTS.round_trips
        assert payout.balance_before == AMOUNTS.ib_funding
        assert payout.balance_after == payout.balance_before + payout.total
        assert payout.entries == AMOUNTS.round_trips
        statements = path.ib.ListStatements(
            ib_pb.ListStatementsRequest(page=PAGE), metadata=ib.session.metadata
        ).statements
        assert [(s.statement_id, s.status) for s in statements] == [
            (payout.statement_id, ib_pb.STATEMENT_STATUS_PAID)
        ]
        assert statements[0].payout_id == payout.payout_id
        assert statements[0].login == ib_account.login
        assert Decimal(statements[0].total) == payout.total

    # The ambient activity is back once the demo is done.
    assert any(a["running"] for a in _ambient(path))
    assert [r.title for r in path.records][-1] == "IB statement approved and paid"


def test_the_demo_command_names_the_step_that_failed_and_exits_non_zero(
    full_suite: LocalSuite,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # the simulator is not there
    command = [
        sys.executable,
        "-m",
        "pipworks_devstack.demo",
        "--gateway",
        full_suite.gateway,
        "--sim-url",
        nowhere,
        "--secrets",
        str(full_suite.config.runner.secrets_file),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert 'step "simulator\'s ambient trading paused" failed: ' in done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.rstrip().endswith("FAILED at: simulator's ambient trading paused")
