"""Bad input gets a precise status and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.kyc.support import JPEG, PNG, Kyc


async def _status(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    return exc.value.code(), exc.value.details() or ""


async def _reason(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    return exc.value.code(), error_details(exc.value).reason or ""


async def test_fields_that_break_the_template(kyc: Kyc) -> None:
    user = await kyc.register()
    md = kyc.client(user)
    for fields in (
        {"date_of_birth": "17/05/1990"},
        {"nationality": "Britain"},
        {"source_of_funds": "lottery"},
        {"annual_income": "-5"},
        {"favourite_colour": "blue"},
    ):
        code, reason = await _reason(
            kyc.stub.SaveDraft(pb.SaveDraftRequest(fields=fields), metadata=md)
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"), fields
    assert await kyc.scalar("SELECT count(*) FROM applications") == 0

    await kyc.stub.SaveDraft(pb.SaveDraftRequest(fields={"first_name": "Ann"}), metadata=md)
    await kyc.upload(user, JPEG)
    code, reason = await _reason(
        kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID")
    assert await kyc.scalar("SELECT state FROM applications") == "draft"


async def test_documents_of_the_wrong_type_size_or_dates(kyc: Kyc) -> None:
    user = await kyc.register()
    exe = b"MZ\x90\x00" + b"\x00" * 100
    code, reason = await _reason(kyc.upload(user, exe))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DOCUMENT_TYPE_NOT_ALLOWED")
    # A PNG name or claimed type does not matter: the bytes decide.
    gif = b"GIF89a" + b"\x00" * 100
    assert (await _reason(kyc.upload(user, gif)))[1] == "DOCUMENT_TYPE_NOT_ALLOWED"

    limit = kyc.deps.config.max_document_bytes
    code, reason = await _reason(kyc.upload(user, PNG + b"\x00" * limit, chunk=256 * 1024))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DOCUMENT_TOO_LARGE")

    code, reason = await _reason(kyc.upload(user, PNG, expires_on="2020-01-01"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DOCUMENT_METADATA_INVALID")
    code, reason = await _reason(kyc.upload(user, PNG, kind="selfie_with_cat"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DOCUMENT_KIND_NOT_ASKED")

    assert await kyc.scalar("SELECT count(*) FROM documents") == 0
    assert not [p for p in kyc.blob_dir.rglob("*") if p.is_file()]


async def test_submit_without_documents_is_refused(kyc: Kyc) -> None:
    user = await kyc.register()
    md = kyc.client(user)
    fields = {
        "first_name": "Ann",
        "last_name": "Lee",
        "date_of_birth": "1990-01-01",
        "nationality": "GB",
        "source_of_funds": "salary",
    }
    await kyc.stub.SaveDraft(pb.SaveDraftRequest(fields=fields), metadata=md)
    code, reason = await _reason(
        kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DOCUMENTS_MISSING")


async def test_review_rules(kyc: Kyc) -> None:
    user = await kyc.ready_applicant()
    md = kyc.client(user)
    app_id = (
        await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    ).application.application_id

    # Approving before claiming, and claiming one's own application.
    reviewer = kyc.reviewer()
    code, reason = await _reason(
        kyc.stub.ApproveApplication(
            pb.ApproveApplicationRequest(application_id=app_id), metadata=reviewer
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "APPLICATION_NOT_IN_REVIEW")
    own = kyc.reviewer(str(user))
    code, reason = await _reason(
        kyc.stub.ClaimApplication(pb.ClaimApplicationRequest(application_id=app_id), metadata=own)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "OWN_APPLICATION")

    code, _ = await _reason(
        kyc.stub.ClaimApplication(
            pb.ClaimApplicationRequest(application_id=str(uuid.uuid4())), metadata=reviewer
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _reason(
        kyc.stub.ClaimApplication(
            pb.ClaimApplicationRequest(application_id="nope"), metadata=reviewer
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _reason(
        kyc.stub.RejectApplication(
            pb.RejectApplicationRequest(application_id=app_id, reason="bad"), metadata=reviewer
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert await kyc.scalar("SELECT state FROM applications") == "submitted"
    assert await kyc.outbox("KycApplicationApproved") == []


async def test_a_client_cannot_read_another_clients_documents(kyc: Kyc) -> None:
    owner = await kyc.register()
    other = await kyc.register()
    doc = await kyc.upload(owner, JPEG)
    code, _ = await _status(kyc.download(doc.document_id, kyc.client(other)))
    assert code == grpc.StatusCode.NOT_FOUND
    mine = await kyc.stub.ListMyDocuments(pb.ListMyDocumentsRequest(), metadata=kyc.client(other))
    assert list(mine.documents) == []

    meta, data = await kyc.download(doc.document_id, kyc.client(owner))
    assert data == JPEG
    assert meta.content_type == "image/jpeg"
    meta, data = await kyc.download(doc.document_id, kyc.reviewer())
    assert data == JPEG
    listed = await kyc.stub.ListMyDocuments(pb.ListMyDocumentsRequest(), metadata=kyc.client(owner))
    assert [d.document_id for d in listed.documents] == [doc.document_id]


async def test_report_thresholds_out_of_range_name_both_fields(kyc: Kyc) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await kyc.stub.GetComplianceReport(
            pb.GetComplianceReportRequest(
                pending_older_than_hours=2**31 - 1, expiring_within_days=-1
            ),
            metadata=kyc.reviewer(),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = {field for field, _ in error_details(refused.value).field_violations}
    assert fields == {"pending_older_than_hours", "expiring_within_days"}


async def test_an_upload_refused_early_reports_its_own_status_to_a_caller_still_writing(
    kyc: Kyc,
) -> None:
    # KYC reads the refused stream out before answering, so a grpc.aio caller is not
    # left writing into a finished call (grpc/grpc#36066; through the gateway it is
    # tests/e2e/test_attack_surface.py that catches the INTERNAL this caused).
    user = await kyc.register()

    async def chunks_without_metadata():
        for _ in range(64):  # past the transport's flow-control window: writes wait
            yield pb.UploadDocumentRequest(chunk=b"\x00" * 16 * 1024)

    seen = set()
    for _ in range(40):
        call = kyc.stub.UploadDocument(chunks_without_metadata(), metadata=kyc.client(user))
        seen.add(await _status(call))
    assert seen == {
        (grpc.StatusCode.INVALID_ARGUMENT, "metadata: the first message must carry the metadata")
    }
