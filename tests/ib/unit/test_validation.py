"""Requests on the wire to checked values: every bad field named at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks_ib import validation
from pipworks_ib.adapters.plan_codec import terms_from_json, terms_to_json
from pipworks_ib.domain.plans import BeyondLastLevel, RuleKind
from pipworks_platform.errors import InvalidArgument
from tests.ib.plans_fixture import ten_level_terms


def test_plan_terms_round_trip_through_the_wire_and_the_database() -> None:
    terms = ten_level_terms(
        overrides={"7b0c1a52-3f1e-4e0f-9d5c-2a4b6c8d0e1f": ten_level_terms().distribution.levels[0]}
    )
    assert validation.plan_terms(validation.terms_message(terms)) == terms
    assert terms_from_json(terms_to_json(terms)) == terms


def test_every_malformed_number_and_kind_is_reported_together() -> None:
    message = pb.PlanTerms(
        currency="USD",
        rules=[
            pb.Rule(rule_id="a", kind=pb.RULE_KIND_PER_LOT, rate="1e3", symbol_group="FX"),
            pb.Rule(rule_id="b", kind=pb.RULE_KIND_UNSPECIFIED, rate="1"),
        ],
        levels=[pb.LevelShare(percent="ten")],
        overrides=[pb.PartnerOverride(partner_id="nope", share=pb.LevelShare(percent="1"))],
        cap_per_deal="1,5",
    )
    with pytest.raises(InvalidArgument) as raised:
        validation.plan_terms(message)
    assert {v.field for v in raised.value.violations} == {
        "terms.rules[0].rate",
        "terms.rules[1].kind",
        "terms.levels[0].percent",
        "terms.overrides[0].partner_id",
        "terms.cap_per_deal",
    }


def test_wire_values_map_to_the_domain() -> None:
    parsed = validation.plan_terms(
        pb.PlanTerms(
            currency="eur",
            symbol_groups=[pb.SymbolGroup(name="FX", patterns=["EURUSD"])],
            rules=[pb.Rule(rule_id="cpa", kind=pb.RULE_KIND_CPA, rate="150", threshold="250.50")],
            levels=[pb.LevelShare(fixed="2.5")],
            beyond=pb.BEYOND_LAST_LEVEL_REPEAT_LAST,
            cap_per_deal="40",
        )
    )
    assert parsed.currency == "EUR"
    assert parsed.rules[0].kind is RuleKind.CPA
    assert parsed.rules[0].threshold == Decimal("250.50")
    assert parsed.distribution.beyond is BeyondLastLevel.REPEAT_LAST
    assert parsed.distribution.cap_per_deal == Decimal(40)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: validation.campaign("spring sale!"), "campaign"),
        (lambda: validation.code("x"), "code"),
        (lambda: validation.reason("r" * 501), "reason"),
        (lambda: validation.dimension(0), "dimension"),
        (lambda: validation.required_uuid("", "partner_id"), "partner_id"),
        (lambda: validation.approval("", 0, ""), "server"),
    ],
)
def test_bad_request_fields_are_invalid_arguments(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument) as raised:
        call()
    assert field in {v.field for v in raised.value.violations}


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, 1_000_000_000), (0, -1), (253402300800, 0), (-62135596801, 0), (-(2**63), 0)],
)
def test_a_timestamp_protobuf_cannot_represent_is_a_field_violation(seconds, nanos) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validation.time_field(Timestamp(seconds=seconds, nanos=nanos), True, "effective_from")
    assert [v.field for v in raised.value.violations] == ["effective_from"]
    assert validation.time_field(Timestamp(), False, "effective_from") is None
