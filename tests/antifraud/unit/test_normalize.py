"""Incoming events → facts, and the content that is refused for the dead-letter stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from google.protobuf.message import Message

from pipworks.common.v1 import payment_pb2
from pipworks.events.v1 import identity_pb2, mtbridge_pb2
from pipworks_antifraud.domain.geo import IpRangeTable, NoGeo
from pipworks_antifraud.handlers.normalize import key_digest, to_fact
from pipworks_antifraud.settings import SAMPLE_GEOIP_CSV
from pipworks_platform.consumer import InboundEvent, PermanentError

USER = str(uuid.uuid4())
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
GEO = IpRangeTable.from_csv_lines(SAMPLE_GEOIP_CSV.read_text().splitlines())


def inbound(message: Message) -> InboundEvent:
    return InboundEvent(uuid.uuid4(), "subject", message, NOW, 1)


def balance(**fields: object) -> mtbridge_pb2.MtBalanceChanged:
    base: dict[str, object] = {
        "user_id": USER,
        "amount": "-250.50",
        "currency": "usd",
        "operation_kind": mtbridge_pb2.MT_OPERATION_KIND_WITHDRAWAL,
        "payment": payment_pb2.PaymentDetails(
            method="card", instrument_fingerprint="fp-1", country_code="gb"
        ),
    }
    base.update(fields)
    return mtbridge_pb2.MtBalanceChanged(**base)  # type: ignore[arg-type]


def test_a_withdrawal_becomes_a_fact_with_an_absolute_amount_and_a_hashed_card() -> None:
    fact = to_fact(inbound(balance()), NoGeo())
    assert fact is not None
    assert (fact.kind, fact.fields["amount"], fact.fields["currency"]) == (
        "WITHDRAWAL",
        Decimal("250.50"),
        "USD",
    )
    assert fact.fields["payment_country"] == "GB"
    assert fact.keys == {"instrument": key_digest("instrument", "fp-1")}
    assert "fp-1" not in str(fact.to_document())
    assert fact.at == NOW.timestamp()  # no executed_at: the event's own time


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (balance(amount="abc"), "is not a decimal"),
        (balance(amount="NaN"), "out of range"),
        (balance(user_id="42"), "is not a UUID"),
        (balance(operation_kind=0), "operation_kind"),
        (balance(currency=""), "currency"),
        (balance(payment=payment_pb2.PaymentDetails(country_code="GBR")), "alpha-2"),
        (mtbridge_pb2.MtDealExecuted(user_id=USER, volume_lots="-1"), "negative"),
        (mtbridge_pb2.MtDealExecuted(user_id=USER, volume_lots="1", entry=9), "entry"),
    ],
)
def test_unusable_content_is_a_permanent_error(message: Message, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        to_fact(inbound(message), NoGeo())


def test_logins_are_located_and_unknown_accounts_ignored() -> None:
    login = identity_pb2.LoginSucceeded(user_id=USER, ip_address="203.0.113.9", device_id="d")
    fact = to_fact(inbound(login), GEO)
    assert fact is not None
    assert (fact.fields["country"], fact.fields["geo_known"]) == ("DE", True)
    assert set(fact.keys) == {"device", "ip"}
    failed = identity_pb2.LoginFailed(user_id="", ip_address="203.0.113.9")
    assert to_fact(inbound(failed), GEO) is None
    nowhere = identity_pb2.LoginSucceeded(user_id=USER, ip_address="8.8.8.8")
    fact = to_fact(inbound(nowhere), GEO)
    assert fact is not None
    assert fact.fields["geo_known"] is False
