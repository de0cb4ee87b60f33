"""Bad requests are refused with every bad field named, before anything is touched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.common.v1 import pagination_pb2, payment_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_mtbridge import commands, validation
from pipworks_mtbridge.adapters.repositories import DealCursor
from pipworks_mtbridge.domain.balance import OperationKind, PaymentDetails
from pipworks_platform.errors import InvalidArgument

parse = validation.RequestParser()


def fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.violations}


@pytest.mark.parametrize(
    ("amount", "kind"),
    [
        ("0", OperationKind.DEPOSIT),
        ("-1", OperationKind.DEPOSIT),
        ("-1", OperationKind.WITHDRAWAL),
        ("1e2", OperationKind.DEPOSIT),
        ("", OperationKind.DEPOSIT),
        ("0", OperationKind.CREDIT),
        ("ten", OperationKind.CREDIT),
    ],
)
def test_amounts_must_be_decimal_and_positive(amount: str, kind: OperationKind) -> None:
    request = pb.DepositRequest(server="mt5-live", login=5, amount=amount, idempotency_key="k1")
    with pytest.raises(InvalidArgument) as raised:
        parse.move_money(request, kind)
    assert fields(raised.value) == {"amount"}


def test_credit_may_remove_credit() -> None:
    request = pb.CreditRequest(server="mt5-live", login=5, amount="-25.50", idempotency_key="k1")
    assert str(parse.move_money(request, OperationKind.CREDIT).amount) == "-25.50"


def test_every_bad_field_is_named_at_once() -> None:
    request = pb.WithdrawRequest(server="Bad Server", login=0, amount="x", idempotency_key="")
    with pytest.raises(InvalidArgument) as raised:
        parse.move_money(request, OperationKind.WITHDRAWAL)
    assert fields(raised.value) == {"server", "login", "amount", "idempotency_key"}


def test_payment_details_are_checked_field_by_field() -> None:
    request = pb.DepositRequest(
        server="mt5-live",
        login=5,
        amount="10",
        idempotency_key="k1",
        payment=payment_pb2.PaymentDetails(
            method="Card!", instrument_fingerprint="has spaces", country_code="gb"
        ),
    )
    with pytest.raises(InvalidArgument) as raised:
        parse.move_money(request, OperationKind.DEPOSIT)
    assert fields(raised.value) == {
        "payment.method",
        "payment.instrument_fingerprint",
        "payment.country_code",
    }


def test_payment_details_travel_with_the_command() -> None:
    payment = payment_pb2.PaymentDetails(
        method="card", instrument_fingerprint="fp:9f2c", country_code="GB"
    )
    request = pb.WithdrawRequest(
        server="mt5-live", login=5, amount="10", idempotency_key="k1", payment=payment
    )
    cmd = parse.move_money(request, OperationKind.WITHDRAWAL)
    assert cmd.payment == PaymentDetails("card", "fp:9f2c", "GB")
    bare = pb.DepositRequest(server="mt5-live", login=5, amount="10", idempotency_key="k2")
    assert parse.move_money(bare, OperationKind.DEPOSIT).payment is None


def test_open_account_checks_ids_leverage_and_currency() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse.open_account(
            pb.OpenAccountRequest(
                user_id="nope",
                server="mt5-live",
                group="",
                leverage=0,
                currency="usd",
                request_id="x",
            )
        )
    assert fields(raised.value) == {"user_id", "group", "leverage", "currency", "request_id"}


def test_page_tokens_round_trip_and_are_bound_to_their_query() -> None:
    user = uuid.uuid4()
    request = pb.ListDealsRequest(user_id=str(user))
    scope = parse.list_deals(request).scope
    cursor = DealCursor(datetime.now(UTC), "mt5-live", 9)
    token = validation.deal_token(cursor, scope)
    request.page.CopyFrom(pagination_pb2.PageRequest(page_token=token, page_size=10))
    assert parse.list_deals(request).after == cursor
    other = pb.ListDealsRequest(
        user_id=str(uuid.uuid4()), page=pagination_pb2.PageRequest(page_token=token)
    )
    with pytest.raises(InvalidArgument) as raised:
        parse.list_deals(other)
    assert fields(raised.value) == {"page.page_token"}
    with pytest.raises(InvalidArgument):
        parse.list_deals(pb.ListDealsRequest(page=pagination_pb2.PageRequest(page_token="garbage")))


def test_a_list_names_a_user_or_an_account_not_both() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse.list_positions(
            pb.ListPositionsRequest(user_id=str(uuid.uuid4()), server="mt5-live", login=5)
        )
    assert fields(raised.value) == {"user_id"}
    scope = parse.list_positions(pb.ListPositionsRequest(server="mt5-live", login=5)).scope
    assert scope.account == commands.AccountRef("mt5-live", 5)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, 1_000_000_000), (0, -1), (253402300800, 0), (-62135596801, 0), (2**63 - 1, 0)],
)
def test_a_timestamp_protobuf_cannot_represent_is_a_field_violation(seconds, nanos) -> None:
    bad = Timestamp(seconds=seconds, nanos=nanos)
    for request in (
        pb.ListDealsRequest(server="mt5-live", login=5, start_time=bad),
        pb.ListPositionsRequest(server="mt5-live", login=5, end_time=bad),
    ):
        with pytest.raises(InvalidArgument) as raised:
            if isinstance(request, pb.ListDealsRequest):
                parse.list_deals(request)
            else:
                parse.list_positions(request)
        assert fields(raised.value) == {
            "start_time" if request.HasField("start_time") else "end_time"
        }
