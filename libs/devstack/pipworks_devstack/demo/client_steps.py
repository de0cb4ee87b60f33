"""The client: referral, two factors, KYC, and the live account the bridge opens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.kyc.v1 import kyc_service_pb2 as kyc_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as bridge_pb
from pipworks_devstack.demo.driver import (
    PAGE,
    Driver,
)
from pipworks_devstack.demo.kyc_forms import answers_for, documents_for
from pipworks_devstack.demo.results import (
    Account,
    Client,
    KycApplication,
    KycDecision,
    Partner,
    Staff,
)
from pipworks_devstack.demo.waiting import StepFailed
from pipworks_devstack.portal import CALL_TIMEOUT

__all__ = ["ClientSteps"]


class ClientSteps(Driver):
    """What the client does in the portal, and what compliance and the bridge do for it."""

    def client_registration(self, partner: Partner) -> Client:
        """A client registers with the partner's referral code; the partner sees it."""
        with self._step("client registered with the sub-IB's code") as step:
            session = self.portal.sign_up(referral_code=partner.referral_code)

            def attributed() -> bool:
                reply = self.ib.ListMyClients(
                    ib_pb.ListMyClientsRequest(page=PAGE),
                    metadata=partner.session.metadata,
                    timeout=CALL_TIMEOUT,
                )
                return any(
                    c.client_user_id == session.user_id and c.referral_code == partner.referral_code
                    for c in reply.clients
                )

            self._wait("client in the sub-IB's ListMyClients", attributed)
            step.ids.update(client=session.user_id, code=partner.referral_code)
            return Client(session.user_id, session, partner.partner_id)

    def two_factor(self, client: Client) -> Client:
        """TOTP enrolled from the provisioning URI; the next login answers the MFA
        challenge with a code computed from it, and the session is aal2."""
        with self._step("client enrolled TOTP and logged in with a code") as step:
            session = self.portal.enable_totp(client.session)
            if session.aal != 2 or session.totp is None:
                raise StepFailed(step.title, f"the session is aal{session.aal}")
            step.ids.update(client=session.user_id, aal=str(session.aal))
            return Client(client.user_id, session, client.referred_by)

    def kyc_submission(self, client: Client) -> KycApplication:
        """Fill whatever template applies, upload a file per document, submit."""
        with self._step("KYC application submitted with documents") as step:
            metadata = client.session.metadata
            template = self._wait(
                "a KYC profile for the client",
                lambda: (
                    self.kyc.GetMyRequirements(
                        kyc_pb.GetMyRequirementsRequest(client_type=kyc_pb.CLIENT_TYPE_INDIVIDUAL),
                        metadata=metadata,
                        timeout=CALL_TIMEOUT,
                    ).template
                ),
            )
            self.kyc.SaveDraft(
                kyc_pb.SaveDraftRequest(
                    client_type=kyc_pb.CLIENT_TYPE_INDIVIDUAL,
                    fields=answers_for(template, country="CY"),
                    currency="USD",
                ),
                metadata=metadata,
                timeout=CALL_TIMEOUT,
            )
            documents = []
            for upload in documents_for(template, date.today()):

                def parts(upload: Any = upload) -> Iterator[kyc_pb.UploadDocumentRequest]:
                    yield kyc_pb.UploadDocumentRequest(metadata=upload.metadata)
                    for start in range(0, len(upload.content), 64 * 1024):
                        yield kyc_pb.UploadDocumentRequest(
                            chunk=upload.content[start : start + 64 * 1024]
                        )

                reply = self.kyc.UploadDocument(parts(), metadata=metadata, timeout=CALL_TIMEOUT)
                documents.append(reply.document.document_id)
            submitted = self.kyc.SubmitApplication(
                kyc_pb.SubmitApplicationRequest(), metadata=metadata, timeout=CALL_TIMEOUT
            ).application
            template_name = f"{template.template_id} v{template.version}"
            step.ids.update(
                application=submitted.application_id, documents=",".join(d[:8] for d in documents)
            )
            step.amounts.update(template=template_name)
            return KycApplication(submitted.application_id, tuple(documents), template_name)

    def kyc_approval(
        self, staff: Staff, application: KycApplication, client: Client
    ) -> KycDecision:
        """The compliance officer claims and approves; a high-risk client gets a second
        officer's approval. Identity then carries the client's KYC level."""
        with self._step("compliance approved the KYC application") as step:
            request = {"application_id": application.application_id}
            self.kyc.ClaimApplication(
                kyc_pb.ClaimApplicationRequest(**request),
                metadata=staff.officer.metadata,
                timeout=CALL_TIMEOUT,
            )
            approved = self.kyc.ApproveApplication(
                kyc_pb.ApproveApplicationRequest(**request, reason="documents verified"),
                metadata=staff.officer.metadata,
                timeout=CALL_TIMEOUT,
            )
            approvers = [staff.officer.user_id]
            if approved.awaiting_second_approval:
                second = self.portal.create_staff(staff.admin, [identity_pb.ROLE_COMPLIANCE])
                approved = self.kyc.ApproveApplication(
                    kyc_pb.ApproveApplicationRequest(**request, reason="second approval"),
                    metadata=second.metadata,
                    timeout=CALL_TIMEOUT,
                )
                approvers.append(second.user_id)
            app = approved.application
            if app.state != kyc_pb.APPLICATION_STATE_APPROVED:
                raise StepFailed(step.title, f"state {kyc_pb.ApplicationState.Name(app.state)}")

            def identity_level() -> int | None:
                user = self.identity.GetCurrentUser(
                    identity_pb.GetCurrentUserRequest(),
                    metadata=client.session.metadata,
                    timeout=CALL_TIMEOUT,
                ).user
                return user.kyc_level if user.kyc_level == app.level else None

            self._wait("the KYC level on the identity record", identity_level)
            risk = kyc_pb.RiskRating.Name(app.risk.rating).removeprefix("RISK_RATING_")
            step.ids.update(application=app.application_id, officers=",".join(approvers))
            step.amounts.update(level=str(app.level), risk=risk)
            return KycDecision(app.application_id, app.level, risk, tuple(approvers))

    def live_account(self, client: Client) -> Account:
        """The bridge opened the live account by itself; it is on the trading server."""
        with self._step("live MT5 account opened") as step:

            def opened() -> bridge_pb.TradingAccount | None:
                reply = self.bridge.ListAccounts(
                    bridge_pb.ListAccountsRequest(user_id=client.user_id),
                    metadata=client.session.metadata,
                    timeout=CALL_TIMEOUT,
                )
                return reply.accounts[0] if reply.accounts else None

            found = self._wait("an account in the client's ListAccounts", opened)
            account = Account(
                found.server, found.login, found.group, found.currency, client.user_id
            )
            on_platform = self.sim_user(account.login)["user"]
            if on_platform["Group"] != account.group:
                raise StepFailed(step.title, f"the simulator has it in {on_platform['Group']}")
            step.ids.update(server=account.server, login=str(account.login), group=account.group)
            return account
