"""The pure domain: templates, the review state machine, risk, sniffing, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pipworks_kyc.domain.applications import State, new_application
from pipworks_kyc.domain.documents import (
    DocumentInfo,
    ExpiryStep,
    Status,
    expiry_step,
    is_fresh,
    sniff_content_type,
)
from pipworks_kyc.domain.risk import Assessment, Inputs, Rating, RiskPolicy, assess
from pipworks_kyc.domain.templates import (
    ClientType,
    FieldSpec,
    FieldType,
    default_template,
    from_json,
    to_json,
    validate_template,
)
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_template_validation_reports_every_bad_field() -> None:
    template = default_template(ClientType.INDIVIDUAL)
    with pytest.raises(InvalidArgument) as exc:
        template.validate_answers(
            {"date_of_birth": "1990-13-01", "nationality": "gb", "annual_income": "abc"},
            complete=True,
        )
    fields = {v.field for v in exc.value.violations}
    assert {"fields.date_of_birth", "fields.nationality", "fields.annual_income"} <= fields
    assert "fields.first_name" in fields  # required at submission
    template.validate_answers({"first_name": "Ann"}, complete=False)  # a draft may be partial


def test_regex_and_bounds() -> None:
    spec = FieldSpec("tax_id", FieldType.TEXT, pattern=r"[0-9]{9}")
    amount = FieldSpec("amount", FieldType.NUMBER, min=Decimal(1), max=Decimal(10))
    from pipworks_platform.errors import Violations

    v = Violations()
    spec.check("12345678X", v, "tax_id")
    amount.check("11", v, "amount")
    amount.check("5", v, "ok")
    assert [x.field for x in v] == ["tax_id", "amount"]


def test_templates_round_trip_and_reject_malformed_definitions() -> None:
    template = default_template(ClientType.CORPORATE)
    again = from_json(
        template.template_id,
        3,
        "corporate",
        "",
        to_json(template),  # type: ignore[arg-type]
    )
    assert again.fields == template.fields
    assert again.documents == template.documents
    assert again.levels == template.levels
    bad = from_json("Bad Id", 1, "individual", "gbr", {"fields": [], "documents": [], "levels": []})
    with pytest.raises(InvalidArgument) as exc:
        validate_template(bad)
    assert {v.field for v in exc.value.violations} >= {
        "template.template_id",
        "template.country_code",
        "template.levels",
    }


def test_levels_follow_the_documents() -> None:
    template = default_template(ClientType.INDIVIDUAL)
    assert template.reachable_level(set()) == 0
    assert template.reachable_level({"identity"}) == 1
    assert template.reachable_level({"identity", "proof_of_address"}) == 2
    assert template.reachable_level({"proof_of_address"}) == 0


def _app():  # type: ignore[no-untyped-def]
    return new_application(uuid.uuid4(), "t", 1, ClientType.INDIVIDUAL, "GB", NOW)


def test_the_review_state_machine() -> None:
    app = _app().submitted(NOW)
    assert app.state is State.SUBMITTED
    with pytest.raises(PermissionDenied):
        app.claimed(str(app.user_id), NOW)
    claimed = app.claimed("rev-1", NOW)
    with pytest.raises(FailedPrecondition):
        claimed.approved("rev-1", 2, 0, 0, NOW)  # not rated
    rated = claimed.rated(Assessment(Rating.HIGH, 70, ()), NOW)
    with pytest.raises(FailedPrecondition) as exc:
        rated.approved("rev-1", 2, 1, 0, NOW)
    assert exc.value.reason == "SCREENING_HIT_OPEN"
    with pytest.raises(FailedPrecondition) as exc:
        rated.approved("rev-1", 2, 0, 1, NOW)
    assert exc.value.reason == "SANCTIONS_CONFIRMED"
    once, done = rated.approved("rev-1", 2, 0, 0, NOW)
    assert not done
    assert once.first_approver_id == "rev-1"
    with pytest.raises(FailedPrecondition) as exc:
        once.approved("rev-1", 2, 0, 0, NOW)
    assert exc.value.reason == "SECOND_APPROVER_REQUIRED"
    final, done = once.approved("rev-2", 2, 0, 0, NOW)
    assert done
    assert final.state is State.APPROVED
    assert final.level == 2
    with pytest.raises(FailedPrecondition):
        final.edited({}, "", NOW)
    asked = rated.information_requested("rev-1", "blurred", NOW)
    again = asked.submitted(NOW)
    assert again.is_resubmission
    assert again.reviewer_id is None


def test_risk_is_explained_factor_by_factor() -> None:
    inputs = Inputs(
        country_code="XX",
        country_rating=Rating.HIGH,
        topics_of_confirmed_hits=[("role.pep",)],
        source_of_funds="inheritance",
        annual_income=Decimal(10000),
        expected_deposits=Decimal(20000),
        date_of_birth=date(2007, 1, 1),
        today=date(2026, 11, 24),
        antifraud_alerts=5,
        antifraud_restricted=False,
    )
    result = assess(inputs, RiskPolicy())
    assert {f.name: f.points for f in result.factors} == {
        "country": 60,
        "pep": 40,
        "source_of_funds": 15,
        "income_vs_deposits": 35,
        "age": 10,
        "antifraud_alerts": 30,
    }
    assert result.score == 190
    assert result.rating is Rating.HIGH
    assert Assessment.from_json(result.to_json()) == result
    calm = assess(
        Inputs(
            "GB",
            Rating.LOW,
            [],
            "salary",
            Decimal(90000),
            Decimal(5000),
            date(1980, 1, 1),
            date(2026, 11, 24),
            0,
            False,
        ),
        RiskPolicy(),
    )
    assert calm.rating is Rating.LOW
    assert calm.score == 0


def test_content_type_comes_from_the_bytes() -> None:
    assert sniff_content_type(b"\xff\xd8\xff\xe0....") == "image/jpeg"
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_content_type(b"%PDF-1.4") == "application/pdf"
    assert sniff_content_type(b"GIF89a") is None
    assert sniff_content_type(b"\x89PNG") is None  # truncated magic


def test_expiry_steps_and_freshness() -> None:
    doc = DocumentInfo(
        uuid.uuid4(),
        uuid.uuid4(),
        "passport",
        "image/png",
        1,
        Status.ACTIVE,
        "",
        date(2026, 1, 1),
        date(2027, 1, 10),
        False,
    )
    assert expiry_step(doc, date(2026, 12, 1), 30) is ExpiryStep.NONE
    assert expiry_step(doc, date(2026, 12, 15), 30) is ExpiryStep.EXPIRING
    assert expiry_step(doc, date(2027, 1, 10), 30) is ExpiryStep.EXPIRED
    assert is_fresh(doc, 90, date(2026, 3, 1))
    assert not is_fresh(doc, 90, date(2026, 6, 1))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from pipworks_kyc.settings import KycSettings

    monkeypatch.setenv("PIPWORKS_KYC_OFAC_SDN_FILES", "/lists/sdn.csv, /lists/cons.csv")
    monkeypatch.setenv("PIPWORKS_KYC_SAMPLE_LISTS", "true")
    settings = KycSettings()
    assert [p.name for p in settings.ofac_sdn_files] == [
        "ofac_sdn_sample.csv",
        "sdn.csv",
        "cons.csv",
    ]
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        KycSettings(kyc_webhook_port=8081)
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        KycSettings(kyc_blob_store="s3")
