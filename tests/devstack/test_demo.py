"""The demo's own parts: files KYC accepts, forms any template accepts, the plan's
expected amounts, failures that name their step, and the summary table."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from pipworks_devstack.config import load_config
from pipworks_devstack.demo import GoldenPath, StepFailed, StepRecord
from pipworks_devstack.demo.files import pdf_document, png_image
from pipworks_devstack.demo.kyc_forms import answers_for, documents_for
from pipworks_devstack.demo.report import print_summary
from pipworks_devstack.demo.results import Plan
from pipworks_devstack.testing import free_port
from pipworks_kyc.domain.documents import sniff_content_type
from pipworks_kyc.domain.templates import ClientType, default_template
from pipworks_kyc.validation import template_to_proto

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_what_kyc_accepts() -> None:
    assert sniff_content_type(png_image()) == "image/png"
    assert sniff_content_type(pdf_document("12 Baker (Street)")) == "application/pdf"
    assert pdf_document("x").rstrip().endswith(b"%%EOF")


@pytest.mark.parametrize("client_type", [ClientType.INDIVIDUAL, ClientType.CORPORATE])
def test_answers_and_documents_satisfy_the_built_in_templates(client_type: ClientType) -> None:
    template = default_template(client_type)
    proto = template_to_proto(template)
    template.validate_answers(answers_for(proto, country="CY"), complete=True)  # raises if not
    today = date(2026, 11, 24)
    uploads = documents_for(proto, today)
    assert [u.requirement for u in uploads] == [d.key for d in template.documents]
    for upload, spec in zip(uploads, template.documents, strict=True):
        assert upload.metadata.kind in spec.accepted_kinds
        issued = date.fromisoformat(upload.metadata.issued_on)
        assert not spec.max_age_days or (today - issued).days < spec.max_age_days
        if spec.identity:
            assert date.fromisoformat(upload.metadata.expires_on) > today
    assert template.reachable_level({u.requirement for u in uploads}) == 2


def test_plan_expected_amounts_round_half_even_per_level() -> None:
    plan = Plan("p", 1, "USD", Decimal("25.00"), (Decimal(70), Decimal(30)))
    assert plan.expected(Decimal("0.2")) == {1: Decimal("3.50"), 2: Decimal("1.50")}
    odd = Plan("p", 1, "USD", Decimal("0.25"), (Decimal(50), Decimal(50)))
    assert odd.expected(Decimal("0.1")) == {1: Decimal("0.01"), 2: Decimal("0.01")}  # 0.0125


def test_a_failing_call_names_the_step_and_the_status() -> None:
    with grpc.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        path = GoldenPath(channel, "http://127.0.0.1:1", "admin@example.com", "pw")
        with pytest.raises(StepFailed) as failed:
            path.staff()
    assert failed.value.step == "staff signed in with two factors"
    assert failed.value.reason.startswith("UNAVAILABLE")
    assert path.records == []


def test_summary_lists_every_step_and_says_where_it_failed() -> None:
    records = [
        StepRecord(1, "deposit credited", {"operation": "0f" * 16}, {"deposit": "10 USD"}, 0.25),
        StepRecord(2, "client traded", {"deals": "1,2"}, {"L1 why": "70% of 5"}, 1.0),
    ]
    out = io.StringIO()
    print_summary(records, out, failed="commissions accrued")
    text = out.getvalue()
    assert "deposit credited" in text
    assert "deposit=10 USD" in text
    assert "why" not in text  # explanations are printed with the step, not in the table
    assert text.rstrip().endswith("2 steps in 1.2 s: FAILED at: commissions accrued")


def test_make_run_keeps_the_simulator_trading_in_the_background() -> None:
    config = load_config(REPO_ROOT / "deploy/local/suite.toml", base_dir=REPO_ROOT)
    sim = next(s for s in config.services if s.name == "mt5sim")
    assert 0 < float(sim.env["MT5SIM_AMBIENT_DEALS_PER_SECOND"]) <= 5  # visible, not a flood
