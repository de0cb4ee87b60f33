"""Staff, the commission plan, the IB and its sub-IB, the IB's own trading account."""

from __future__ import annotations

import uuid
from decimal import Decimal

import grpc

from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as bridge_pb
from pipworks_devstack.demo.driver import (
    LIVE_GROUP,
    LIVE_SERVER,
    PAGE,
    Driver,
)
from pipworks_devstack.demo.results import (
    Account,
    Partner,
    Plan,
    Staff,
)
from pipworks_devstack.demo.waiting import StepFailed
from pipworks_devstack.portal import CALL_TIMEOUT, Session, TotpDevice

__all__ = ["PartnerSteps"]


class PartnerSteps(Driver):
    """What the back office sets up before a client arrives."""

    def staff(self) -> Staff:
        """The bootstrap admin at aal2 (enrolling TOTP if it has none) and a compliance
        officer it creates, also at aal2."""
        with self._step("staff signed in with two factors") as step:
            email, password, totp = self._admin
            admin = self._admin_session(email, password, totp)
            if totp is None:
                self.enrolled_admin_totp = admin.totp
            officer = self.portal.create_staff(admin, [identity_pb.ROLE_COMPLIANCE])
            step.ids.update(admin=admin.user_id, compliance_officer=officer.user_id)
            return Staff(admin, officer)

    def _admin_session(self, email: str, password: str, totp: TotpDevice | None) -> Session:
        """Identity refuses a code whose 30-second step is not later than the last it
        accepted, and an earlier run may have used this step and the next (the drift
        window): the device then moves on a step per attempt, waiting when it must."""
        for _ in range(2):
            try:
                return self.portal.sign_in(email, password, totp)
            except grpc.RpcError as exc:
                if totp is None or exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise
        return self.portal.sign_in(email, password, totp)

    def commission_plan(self, staff: Staff) -> Plan:
        """A per-lot plan on FX majors shared 70/30 between a client's IB and its parent."""
        with self._step("commission plan created") as step:
            plan = Plan(
                plan_id=f"demo-{self.run_id}",
                version=1,
                currency="USD",
                rate_per_lot=Decimal("25.00"),
                level_percents=(Decimal(70), Decimal(30)),
            )
            terms = ib_pb.PlanTerms(
                currency=plan.currency,
                symbol_groups=[
                    ib_pb.SymbolGroup(name="FX majors", patterns=["EURUSD", "GBPUSD", "USDJPY"])
                ],
                rules=[
                    ib_pb.Rule(
                        rule_id="fx-lot",
                        kind=ib_pb.RULE_KIND_PER_LOT,
                        rate=str(plan.rate_per_lot),
                        symbol_group="FX majors",
                    )
                ],
                levels=[ib_pb.LevelShare(percent=str(p)) for p in plan.level_percents],
                beyond=ib_pb.BEYOND_LAST_LEVEL_NOTHING,
            )
            created = self.ib.CreatePlan(
                ib_pb.CreatePlanRequest(
                    plan_id=plan.plan_id, name="Demo two-level per-lot", terms=terms
                ),
                metadata=staff.admin.metadata,
                timeout=CALL_TIMEOUT,
            )
            step.ids.update(plan=plan.plan_id, version=str(created.version.version))
            step.amounts.update(
                per_lot=f"{plan.rate_per_lot} {plan.currency}",
                levels="/".join(f"{p}%" for p in plan.level_percents),
            )
            return plan

    # -- partners --------------------------------------------------------------------

    def _partner(
        self, staff: Staff, session: Session, invitation_code: str, plan: Plan | None
    ) -> Partner:
        """Join the program (pending), be approved and given the ``ib`` role, then make
        a referral link: what the portal and the back office do for a new IB."""
        joined = self.ib.JoinProgram(
            ib_pb.JoinProgramRequest(invitation_code=invitation_code),
            metadata=session.metadata,
            timeout=CALL_TIMEOUT,
        ).partner
        partner_id = joined.partner_id
        self.ib.ApprovePartner(
            ib_pb.ApprovePartnerRequest(partner_id=partner_id),
            metadata=staff.admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        if plan is not None:
            self.ib.AssignPlan(
                ib_pb.AssignPlanRequest(partner_id=partner_id, plan_id=plan.plan_id),
                metadata=staff.admin.metadata,
                timeout=CALL_TIMEOUT,
            )
        session = self.portal.grant_role(staff.admin, session, identity_pb.ROLE_IB)
        link = self.ib.CreateReferralLink(
            ib_pb.CreateReferralLinkRequest(campaign=f"demo-{self.run_id}"),
            metadata=session.metadata,
            timeout=CALL_TIMEOUT,
        ).link
        return Partner(partner_id, session.user_id, session, link.code, joined.parent_partner_id)

    def ib_partner(self, staff: Staff, plan: Plan) -> Partner:
        """A top-level IB, approved, on the plan, with its referral code."""
        with self._step("IB partner approved") as step:
            session = self.portal.sign_up()
            partner = self._partner(staff, session, "", plan)
            step.ids.update(
                partner=partner.partner_id, user=partner.user_id, code=partner.referral_code
            )
            return partner

    def sub_ib(self, staff: Staff, parent: Partner) -> Partner:
        """A sub-IB: registers with the IB's code and joins the program by its invitation."""
        with self._step("sub-IB approved under the IB") as step:
            session = self.portal.sign_up(referral_code=parent.referral_code)
            partner = self._partner(staff, session, parent.referral_code, None)
            if partner.parent_partner_id != parent.partner_id:
                raise StepFailed(
                    step.title, f"the sub-IB's parent is {partner.parent_partner_id or 'none'}"
                )

            def listed() -> bool:
                reply = self.ib.ListSubPartners(
                    ib_pb.ListSubPartnersRequest(page=PAGE),
                    metadata=parent.session.metadata,
                    timeout=CALL_TIMEOUT,
                )
                return any(
                    p.partner.partner_id == partner.partner_id and p.relative_depth == 1
                    for p in reply.partners
                )

            self._wait("sub-IB in the IB's ListSubPartners", listed)
            step.ids.update(
                partner=partner.partner_id,
                parent=parent.partner_id,
                user=partner.user_id,
                code=partner.referral_code,
            )
            return partner

    def ib_account(self, staff: Staff, ib: Partner, funding: Decimal) -> Account:
        """The IB's own trading account (payouts are paid to it), funded by the cashier."""
        with self._step("IB trading account opened") as step:
            opened = self.bridge.OpenAccount(
                bridge_pb.OpenAccountRequest(
                    user_id=ib.user_id,
                    server=LIVE_SERVER,
                    group=LIVE_GROUP,
                    leverage=100,
                    currency="USD",
                    request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, self._key("ib-account"))),
                ),
                metadata=staff.admin.metadata,
                timeout=CALL_TIMEOUT,
            ).account
            account = Account(
                opened.server, opened.login, opened.group, opened.currency, ib.user_id
            )
            if funding > 0:
                self._deposit(staff, account, funding, "ib-funding")
            step.ids.update(server=account.server, login=str(account.login))
            step.amounts.update(funded=f"{funding} {account.currency}")
            return account
