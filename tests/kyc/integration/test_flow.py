"""The golden path: a registered client applies, a reviewer approves, the approval event
goes out; and the more-information loop."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import nats
import pytest

from pipworks.events.v1 import kyc_pb2
from pipworks.kyc.v1 import kyc_service_pb2 as pb
from tests.kyc.support import Kyc


async def test_client_to_approved_emits_the_approval(kyc: Kyc) -> None:
    user = await kyc.ready_applicant()
    md = kyc.client(user)
    submitted = (
        await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    ).application
    assert submitted.state == pb.APPLICATION_STATE_SUBMITTED
    assert not submitted.HasField("risk")  # the client does not see the rating

    reviewer = kyc.reviewer()
    queue = await kyc.stub.ListApplications(
        pb.ListApplicationsRequest(states=[pb.APPLICATION_STATE_SUBMITTED]), metadata=reviewer
    )
    assert [a.application_id for a in queue.applications] == [submitted.application_id]
    assert not queue.applications[0].fields  # answers stay out of the queue

    app_id = submitted.application_id
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    details = await kyc.stub.GetApplication(
        pb.GetApplicationRequest(application_id=app_id), metadata=reviewer
    )
    assert details.application.fields["last_name"] == "Hartley"
    assert details.application.risk.rating == pb.RISK_RATING_LOW
    assert [(f.name, f.points) for f in details.application.risk.factors] == [("country", 20)]
    assert sorted(d.kind for d in details.documents) == ["passport", "proof_of_address"]
    assert not details.hits

    approved = await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id, reason="documents verified"),
        metadata=reviewer,
    )
    assert approved.application.state == pb.APPLICATION_STATE_APPROVED
    assert approved.application.level == 2
    assert not approved.awaiting_second_approval

    status = await kyc.stub.GetMyStatus(pb.GetMyStatusRequest(), metadata=md)
    assert status.level == 2

    events = await kyc.outbox("KycApplicationApproved")
    assert len(events) == 1
    assert events[0].user_id == str(user)
    assert events[0].level == 2
    assert events[0].currency == "USD"
    assert events[0].country_code == "GB"
    assert events[0].risk_rating == kyc_pb2.KYC_RISK_RATING_LOW
    assert len(await kyc.outbox("KycApplicationSubmitted")) == 1

    # The relay puts it on JetStream, where mtbridge picks it up.
    client = await nats.connect(kyc.nats_url)
    try:
        js = client.jetstream()
        sub = await js.pull_subscribe("pipworks.kyc.v1.application.approved", stream="PIPWORKS_KYC")
        messages = await sub.fetch(1, timeout=10)
        on_wire = kyc_pb2.KycApplicationApproved.FromString(messages[0].data)
        assert on_wire.application_id == app_id
    finally:
        await client.close()

    actions = [
        r["action"]
        for r in await kyc.sql(
            "SELECT action FROM audit_log WHERE subject = $1 ORDER BY sequence",
            f"application:{app_id}",
        )
    ]
    assert actions == [
        "kyc.application.created",
        "kyc.application.submitted",
        "kyc.application.claimed",
        "kyc.application.approved",
    ]


async def test_more_information_loop(kyc: Kyc) -> None:
    user = await kyc.ready_applicant()
    md = kyc.client(user)
    app_id = (
        await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    ).application.application_id
    reviewer = kyc.reviewer()
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    asked = await kyc.stub.RequestInformation(
        pb.RequestInformationRequest(application_id=app_id, reason="the passport scan is blurred"),
        metadata=reviewer,
    )
    assert asked.application.state == pb.APPLICATION_STATE_INFORMATION_REQUESTED

    status = await kyc.stub.GetMyStatus(pb.GetMyStatusRequest(), metadata=md)
    assert status.application.reason == "the passport scan is blurred"
    assert status.application.state == pb.APPLICATION_STATE_INFORMATION_REQUESTED

    from tests.kyc.support import JPEG

    await kyc.upload(user, JPEG + b"sharper")
    again = await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    assert again.application.application_id == app_id
    assert again.application.state == pb.APPLICATION_STATE_SUBMITTED
    submitted = await kyc.outbox("KycApplicationSubmitted")
    assert [e.resubmission for e in submitted] == [False, True]

    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    rejected = await kyc.stub.RejectApplication(
        pb.RejectApplicationRequest(application_id=app_id, reason="DOCUMENT_FORGED"),
        metadata=reviewer,
    )
    assert rejected.application.state == pb.APPLICATION_STATE_REJECTED
    assert [e.reason for e in await kyc.outbox("KycApplicationRejected")] == ["DOCUMENT_FORGED"]


async def test_reviewer_calls_need_aal2_and_the_role(kyc: Kyc) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ListApplications(pb.ListApplicationsRequest(), metadata=kyc.reviewer(aal=1))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    user = await kyc.register()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ListApplications(pb.ListApplicationsRequest(), metadata=kyc.client(user))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_queue_pages_and_filters_and_the_audit_chain_holds(kyc: Kyc) -> None:
    from pipworks_platform.audit import check_chain

    ids = []
    for _ in range(3):
        user = await kyc.ready_applicant()
        reply = await kyc.stub.SubmitApplication(
            pb.SubmitApplicationRequest(), metadata=kyc.client(user)
        )
        ids.append(reply.application.application_id)
        kyc.clock.advance(minutes=1)
    reviewer_id = str(uuid.uuid4())
    reviewer = kyc.reviewer(reviewer_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await kyc.stub.ListApplications(
            pb.ListApplicationsRequest(
                states=[pb.APPLICATION_STATE_SUBMITTED], page_size=2, page_token=token
            ),
            metadata=reviewer,
        )
        seen += [a.application_id for a in page.applications]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids  # oldest submission first, nothing skipped or repeated

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ListApplications(
            pb.ListApplicationsRequest(
                states=[pb.APPLICATION_STATE_IN_REVIEW], page_token=token or "x"
            ),
            metadata=reviewer,
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=ids[1]), metadata=reviewer
    )
    mine = await kyc.stub.ListApplications(
        pb.ListApplicationsRequest(reviewer_id=reviewer_id),
        metadata=reviewer,
    )
    assert [a.application_id for a in mine.applications] == [ids[1]]
    other_country = await kyc.stub.ListApplications(
        pb.ListApplicationsRequest(country_code="DE"), metadata=reviewer
    )
    assert list(other_country.applications) == []

    report = await kyc.stub.GetComplianceReport(
        pb.GetComplianceReportRequest(pending_older_than_hours=1), metadata=reviewer
    )
    assert report.pending_older == 0
    kyc.clock.advance(hours=2)
    report = await kyc.stub.GetComplianceReport(
        pb.GetComplianceReportRequest(pending_older_than_hours=1), metadata=reviewer
    )
    assert report.pending_older == 3

    chain = await check_chain(kyc.deps.uow)
    assert chain.intact
    assert chain.entries_checked >= 10
    # The log is append-only: an edit is refused by the database itself.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await kyc.sql("UPDATE audit_log SET details = '{}'::jsonb")
