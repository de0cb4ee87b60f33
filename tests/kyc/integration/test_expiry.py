"""The expiry scheduler, driven by a controllable clock: a notice N days ahead, expiry on
the day, the level lowered, and restored by a replacement."""

from __future__ import annotations

import uuid
from pathlib import Path

from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_kyc.handlers.documents import run_expiry
from tests.helpers import eventually
from tests.kyc.support import JPEG, Clock, Kyc, running_kyc
from tests.tokens import TokenAuthority


async def _approved(kyc: Kyc, passport_expires: str) -> str:
    user = await kyc.ready_applicant(passport_expires=passport_expires)
    reply = await kyc.stub.SubmitApplication(
        pb.SubmitApplicationRequest(), metadata=kyc.client(user)
    )
    reviewer = kyc.reviewer()
    app_id = reply.application.application_id
    await kyc.stub.ClaimApplication(
        pb.ClaimApplicationRequest(application_id=app_id), metadata=reviewer
    )
    await kyc.stub.ApproveApplication(
        pb.ApproveApplicationRequest(application_id=app_id), metadata=reviewer
    )
    return str(user)


async def test_expiring_expired_lowered_and_restored(kyc: Kyc) -> None:
    # The clock starts on 2026-11-24; the notice period is 30 days.
    user = await _approved(kyc, passport_expires="2027-01-10")
    assert (await run_expiry(kyc.deps)).expiring == 0  # 47 days left

    kyc.clock.advance(days=20)  # 2026-12-14: 27 days left
    result = await run_expiry(kyc.deps)
    assert (result.expiring, result.expired) == (1, 0)
    expiring = await kyc.outbox("KycDocumentExpiring")
    assert [(e.user_id, e.kind, e.days_left) for e in expiring] == [(user, "passport", 27)]
    assert expiring[0].expires_at.ToDatetime().date().isoformat() == "2027-01-10"
    assert (await run_expiry(kyc.deps)).expiring == 0  # sent once

    kyc.clock.advance(days=27)  # 2027-01-10: expires today
    result = await run_expiry(kyc.deps)
    assert (result.expired, result.lowered) == (1, 1)
    assert [e.user_id for e in await kyc.outbox("KycDocumentExpired")] == [user]
    changed = await kyc.outbox("KycLevelChanged")
    assert [(c.previous_level, c.level, c.reason) for c in changed] == [(2, 0, "DOCUMENT_EXPIRED")]
    md = kyc.client(uuid.UUID(user))
    assert (await kyc.stub.GetMyStatus(pb.GetMyStatusRequest(), metadata=md)).level == 0
    assert (await run_expiry(kyc.deps)).expired == 0

    await kyc.upload(uuid.UUID(user), JPEG + b"new", expires_on="2036-01-09")
    changed = await kyc.outbox("KycLevelChanged")
    assert [(c.level, c.reason) for c in changed][-1] == (2, "DOCUMENT_REPLACED")
    assert (await kyc.stub.GetMyStatus(pb.GetMyStatusRequest(), metadata=md)).level == 2

    report = await kyc.stub.GetComplianceReport(
        pb.GetComplianceReportRequest(expiring_within_days=3650), metadata=kyc.reviewer()
    )
    assert report.expiring_documents == 1
    counts = {c.state: c.count for c in report.by_state}
    assert counts[pb.APPLICATION_STATE_APPROVED] == 1


async def test_the_background_scheduler_runs_on_the_service_clock(
    database_url: str, nats_url: str, token_authority: TokenAuthority, tmp_path: Path
) -> None:
    async with running_kyc(
        database_url,
        nats_url,
        token_authority,
        tmp_path / "blobs",
        kyc_expiry_interval_seconds=0.05,
        kyc_expiry_notice_days=7,
    ) as kyc:
        user = await kyc.register()
        await kyc.upload(user, JPEG, expires_on="2026-12-01")  # 7 days after the clock's today
        notices = await eventually(lambda: kyc.outbox("KycDocumentExpiring"))
        assert [(n.user_id, n.days_left) for n in notices] == [(str(user), 7)]
        assert await kyc.outbox("KycDocumentExpired") == []
        kyc.clock.advance(days=7)
        expired = await eventually(lambda: kyc.outbox("KycDocumentExpired"))
        assert [e.user_id for e in expired] == [str(user)]
        assert await kyc.scalar("SELECT status FROM documents") == "expired"


async def test_a_restart_keeps_state_and_lists(
    database_url: str, nats_url: str, token_authority: TokenAuthority, tmp_path: Path
) -> None:
    clock = Clock()
    async with running_kyc(
        database_url, nats_url, token_authority, tmp_path / "b", clock=clock
    ) as kyc:
        user = await kyc.ready_applicant()
        await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=kyc.client(user))
        loads = await kyc.sql("SELECT source, load_id FROM list_loads ORDER BY source")
    async with running_kyc(
        database_url, nats_url, token_authority, tmp_path / "b", clock=clock
    ) as kyc:
        status = await kyc.stub.GetMyStatus(pb.GetMyStatusRequest(), metadata=kyc.client(user))
        assert status.application.state == pb.APPLICATION_STATE_SUBMITTED
        assert await kyc.sql("SELECT source, load_id FROM list_loads ORDER BY source") == loads
        listed = await kyc.stub.ListMyDocuments(
            pb.ListMyDocumentsRequest(), metadata=kyc.client(user)
        )
        passport = next(d for d in listed.documents if d.kind == "passport")
        _, data = await kyc.download(passport.document_id, kyc.client(user))
        assert data == JPEG
