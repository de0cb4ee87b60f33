"""Screening hits block approval until resolved; confirmed PEPs and risky countries raise
the rating; a high rating needs a second, different approver; reloading the lists
rescreens approved clients."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from pipworks.events.v1 import kyc_pb2
from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_kyc.handlers.screening import reload_lists
from tests.kyc.support import Kyc


async def _submitted(kyc: Kyc, **names: str) -> tuple[str, str]:
    user = await kyc.ready_applicant(**names)
    reply = await kyc.stub.SubmitApplication(
        pb.SubmitApplicationRequest(), metadata=kyc.client(user)
    )
    return str(user), reply.application.application_id


async def test_a_hit_blocks_approval_until_confirmed_and_a_high_risk_needs_two(kyc: Kyc) -> None:
    admin = kyc.admin()
    await kyc.stub.SetCountryRisk(
        pb.SetCountryRiskRequest(country_code="GR", rating=pb.RISK_RATING_MEDIUM), metadata=admin
    )
    # Greek script, a PEP in the sample list.
    user, app_id = await _submitted(
        kyc, first="Δημήτρης", last="Παπαδάκης", country="GR", date_of_birth="1958-02-17"
    )
    hits = await kyc.outbox("KycScreeningHit")
    assert [(h.user_id, h.list_entry_id) for h in hits] == [(user, "pw-sample-0004")]
    assert list(hits[0].topics) == ["role.pep"]

    first, second = kyc.reviewer(), kyc.reviewer()
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=first
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ApproveApplication(
            pb.ApproveApplicationRequest(application_id=app_id), metadata=first
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "screening hit" in (exc.value.details() or "")

    confirmed = await kyc.stub.ResolveScreeningHit(
        pb.ResolveScreeningHitRequest(
            hit_id=hits[0].hit_id,
            resolution=pb.HIT_STATUS_CONFIRMED,
            reason="same person, DOB matches",
        ),
        metadata=first,
    )
    assert confirmed.hit.status == pb.HIT_STATUS_CONFIRMED
    details = await kyc.stub.GetApplication(
        pb.GetApplicationRequest(application_id=app_id), metadata=first
    )
    risk = details.application.risk
    assert risk.rating == pb.RISK_RATING_HIGH
    assert {f.name: f.points for f in risk.factors} == {"country": 20, "pep": 40}
    assert risk.score == 60

    once = await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id), metadata=first
    )
    assert once.awaiting_second_approval
    assert once.application.state == pb.APPLICATION_STATE_IN_REVIEW
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ApproveApplication(
            pb.ApproveApplicationRequest(application_id=app_id), metadata=first
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await kyc.outbox("KycApplicationApproved") == []

    twice = await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id), metadata=second
    )
    assert twice.application.state == pb.APPLICATION_STATE_APPROVED
    approved = await kyc.outbox("KycApplicationApproved")
    assert [e.risk_rating for e in approved] == [kyc_pb2.KYC_RISK_RATING_HIGH]


async def test_a_cleared_hit_unblocks_and_an_override_is_explained(kyc: Kyc) -> None:
    _, app_id = await _submitted(kyc, first="Viktor", last="Morozov", date_of_birth="1961-04-12")
    hits = await kyc.outbox("KycScreeningHit")
    assert [h.list_entry_id for h in hits] == ["pw-sample-0001"]
    reviewer = kyc.reviewer()
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    await kyc.stub.ResolveScreeningHit(
        pb.ResolveScreeningHitRequest(
            hit_id=hits[0].hit_id,
            resolution=pb.HIT_STATUS_CLEARED,
            reason="a namesake: passport and address differ",
        ),
        metadata=reviewer,
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ResolveScreeningHit(
            pb.ResolveScreeningHitRequest(
                hit_id=hits[0].hit_id, resolution=pb.HIT_STATUS_CONFIRMED, reason="x"
            ),
            metadata=reviewer,
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    overridden = await kyc.stub.OverrideRisk(
        pb.OverrideRiskRequest(
            application_id=app_id, rating=pb.RISK_RATING_MEDIUM, reason="name similarity"
        ),
        metadata=reviewer,
    )
    assert overridden.application.risk.overridden
    assert overridden.application.risk.rating == pb.RISK_RATING_MEDIUM
    assert overridden.application.risk.override_reason == "name similarity"
    approved = await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id), metadata=reviewer
    )
    assert approved.application.state == pb.APPLICATION_STATE_APPROVED


async def test_reloading_lists_rescreens_approved_clients(kyc: Kyc, tmp_path: Path) -> None:
    user, app_id = await _submitted(kyc, first="Rowan", last="Ashcombe")
    reviewer = kyc.reviewer()
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id), metadata=reviewer
    )
    assert await kyc.outbox("KycScreeningHit") == []

    extra = tmp_path / "sdn.csv"
    extra.write_text(
        '2001,"ASHCOMBE, Rowan","individual","SAMPLE-PROG","-0- ","-0- ","-0- ","-0- ",'
        '"-0- ","-0- ","-0- ","-0- "\n'
    )
    kyc.deps.screening.ofac_sdn_files = (*kyc.deps.screening.ofac_sdn_files, extra)
    reply = await kyc.stub.ReloadLists(pb.ReloadListsRequest(), metadata=kyc.admin())
    assert reply.rescreened == 1
    assert reply.new_hits == 1
    assert reply.entries["ofac_sdn"] == 7
    hits = await kyc.outbox("KycScreeningHit")
    assert [(h.user_id, h.list_source, h.list_entry_id, h.application_id) for h in hits] == [
        (user, "ofac_sdn", "2001", "")
    ]
    # Reloading again raises nothing new.
    again = await kyc.stub.ReloadLists(pb.ReloadListsRequest(), metadata=kyc.admin())
    assert again.new_hits == 0
    # A restart finds the same files and neither reloads nor rescreens.
    assert await reload_lists(kyc.deps, "system", only_if_changed=True) == (
        {"opensanctions": 15, "ofac_sdn": 7},
        0,
        0,
    )

    kyc.deps.screening.ofac_sdn_files = (tmp_path / "missing.csv",)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.ReloadLists(pb.ReloadListsRequest(), metadata=kyc.admin())
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_corporate_applicant_is_screened_by_company_name(kyc: Kyc) -> None:
    from tests.kyc.support import JPEG, PDF

    user = await kyc.register("CY")
    md = kyc.client(user)
    fields = {
        "company_name": "Northwind Maritime Holdings",
        "registration_number": "HE 123456",
        "country_of_incorporation": "CY",
        "source_of_funds": "business",
    }
    draft = await kyc.stub.SaveDraft(
        pb.SaveDraftRequest(client_type=pb.CLIENT_TYPE_CORPORATE, fields=fields), metadata=md
    )
    assert draft.application.template_id == "corporate_default"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.SaveDraft(pb.SaveDraftRequest(fields={"first_name": "X"}), metadata=md)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # the type is fixed
    await kyc.upload(user, PDF, kind="certificate_of_incorporation", expires_on="")
    await kyc.upload(user, JPEG, kind="passport")
    await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    hits = await kyc.outbox("KycScreeningHit")
    assert [(h.user_id, h.list_entry_id) for h in hits] == [(str(user), "pw-sample-0009")]
