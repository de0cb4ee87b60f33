"""Templates as versioned data, anti-fraud signals in the rating, the provider webhook."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import aiohttp
import grpc
import nats
import pytest

from pipworks.events.v1 import antifraud_pb2
from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_kyc.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.helpers import eventually
from tests.kyc.support import JPEG, Kyc, running_kyc
from tests.tokens import TokenAuthority

SECRET = "webhook-secret-0123456789"


def _template(version_note: str, pattern: str) -> pb.RequirementTemplate:
    return pb.RequirementTemplate(
        template_id="individual_de",
        client_type=pb.CLIENT_TYPE_INDIVIDUAL,
        country_code="DE",
        fields=[
            pb.FieldRequirement(name="first_name", type=pb.FIELD_TYPE_TEXT, required=True),
            pb.FieldRequirement(name="last_name", type=pb.FIELD_TYPE_TEXT, required=True),
            pb.FieldRequirement(
                name="tax_id", type=pb.FIELD_TYPE_TEXT, required=True, pattern=pattern
            ),
        ],
        documents=[
            pb.DocumentRequirement(
                key="identity", accepted_kinds=["national_id"], identity=True, level=1
            )
        ],
        levels=[pb.LevelDefinition(level=1, description=version_note, deposit_limit="5000")],
    )


async def test_applications_keep_the_template_version_they_started_with(kyc: Kyc) -> None:
    admin = kyc.admin()
    v1 = await kyc.stub.PutTemplate(
        pb.PutTemplateRequest(template=_template("v1", "[0-9]{11}")), metadata=admin
    )
    assert v1.template.version == 1
    user = await kyc.register("DE")
    md = kyc.client(user)
    required = await kyc.stub.GetMyRequirements(pb.GetMyRequirementsRequest(), metadata=md)
    assert (required.template.template_id, required.template.version) == ("individual_de", 1)
    draft = await kyc.stub.SaveDraft(
        pb.SaveDraftRequest(
            fields={"first_name": "Lena", "last_name": "Vogt", "tax_id": "12345678901"}
        ),
        metadata=md,
    )
    assert draft.application.template_version == 1

    v2 = await kyc.stub.PutTemplate(
        pb.PutTemplateRequest(template=_template("v2", "[A-Z]{2}[0-9]{4}")), metadata=admin
    )
    assert v2.template.version == 2
    listed = await kyc.stub.ListTemplates(pb.ListTemplatesRequest(), metadata=admin)
    assert [(t.template_id, t.version) for t in listed.templates] == [("individual_de", 2)]

    # The draft is still judged against version 1.
    await kyc.upload(user, JPEG, kind="national_id")
    submitted = await kyc.stub.SubmitApplication(pb.SubmitApplicationRequest(), metadata=md)
    assert submitted.application.template_version == 1

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await kyc.stub.PutTemplate(
            pb.PutTemplateRequest(template=_template("bad", "([unclosed")), metadata=admin
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    actions = [
        r["action"]
        for r in await kyc.sql(
            "SELECT action FROM audit_log WHERE subject = 'template:individual_de'"
        )
    ]
    assert actions == ["kyc.template.published", "kyc.template.published"]


async def test_antifraud_signals_raise_the_rating(kyc: Kyc) -> None:
    user = await kyc.ready_applicant()
    for _ in range(3):
        await kyc.publish(
            antifraud_pb2.AntifraudAlertRaised(alert_id=str(uuid.uuid4()), user_id=str(user))
        )
    await kyc.publish(antifraud_pb2.AntifraudClientRestricted(user_id=str(user), trading=True))
    await eventually(
        lambda: kyc.scalar(
            "SELECT antifraud_alerts FROM profiles WHERE user_id = $1 AND antifraud_restricted",
            user,
        ),
        until=lambda n: n == 3,
    )
    reply = await kyc.stub.SubmitApplication(
        pb.SubmitApplicationRequest(), metadata=kyc.client(user)
    )
    details = await kyc.stub.GetApplication(
        pb.GetApplicationRequest(application_id=reply.application.application_id),
        metadata=kyc.reviewer(),
    )
    factors = {f.name: f.points for f in details.application.risk.factors}
    assert factors["antifraud_alerts"] == 30
    assert factors["antifraud_restricted"] == 40
    assert details.application.risk.rating == pb.RISK_RATING_HIGH


async def test_signed_provider_verdicts(
    database_url: str, nats_url: str, token_authority: TokenAuthority, tmp_path: Path
) -> None:
    async with running_kyc(
        database_url,
        nats_url,
        token_authority,
        tmp_path / "blobs",
        kyc_provider="webhook",
        kyc_webhook_port=0,
        kyc_webhook_host="127.0.0.1",
        kyc_webhook_secret=SECRET,
    ) as kyc:
        user = await kyc.ready_applicant()
        reply = await kyc.stub.SubmitApplication(
            pb.SubmitApplicationRequest(), metadata=kyc.client(user)
        )
        app_id = reply.application.application_id
        assert await kyc.scalar("SELECT provider_reference FROM applications") == f"pw-{app_id}"
        port = kyc.webhook_port()
        url = f"http://127.0.0.1:{port}/webhooks/sumsub"
        body = json.dumps(
            {"application_id": app_id, "verdict": "approved", "reference": "ss-1"}
        ).encode()
        now = int(time.time())
        async with aiohttp.ClientSession() as http:

            async def post(payload: bytes, ts: int, signature: str) -> int:
                headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature}
                async with http.post(url, data=payload, headers=headers) as response:
                    return response.status

            assert await post(body, now, sign(b"wrong-secret-xxxxxxxx", now, body)) == 401
            assert await post(body + b" ", now, sign(SECRET.encode(), now, body)) == 401
            stale = now - 3600
            assert await post(body, stale, sign(SECRET.encode(), stale, body)) == 401
            assert await kyc.scalar("SELECT provider_verdict FROM applications") is None
            assert await post(body, now, sign(SECRET.encode(), now, body)) == 200
        assert await kyc.scalar("SELECT provider_verdict FROM applications") == "approved"
        actor = await kyc.scalar(
            "SELECT actor FROM audit_log WHERE action = 'kyc.provider.verdict'"
        )
        assert actor == "provider:sumsub"
        # The verdict informs the reviewer; it does not approve by itself.
        assert await kyc.scalar("SELECT state FROM applications") == "submitted"


async def test_a_malformed_registration_is_dead_lettered_and_the_next_applies(kyc: Kyc) -> None:
    from pipworks.events.v1 import identity_pb2
    from pipworks_platform.consumer import HEADER_DL_REASON
    from pipworks_platform.streams import DEADLETTER_STREAM, deadletter_subject

    await kyc.publish(identity_pb2.UserRegistered(user_id="not-a-uuid", country_code="GB"))
    user = await kyc.register("FR")  # waits until its profile exists
    assert await kyc.scalar("SELECT country_code FROM profiles WHERE user_id = $1", user) == "FR"
    assert await kyc.scalar("SELECT count(*) FROM profiles") == 1

    client = await nats.connect(kyc.nats_url)
    try:
        sub = await client.jetstream().pull_subscribe(
            deadletter_subject("kyc", "kyc-user-registered"), stream=DEADLETTER_STREAM
        )
        parked = await sub.fetch(1, timeout=10)
        assert "UUID" in (parked[0].headers or {}).get(HEADER_DL_REASON, "")
    finally:
        await client.close()
