"""The RPC list and request strategies the attack and fuzz tests are generated from."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.kyc.v1 import kyc_service_pb2 as kyc_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as mtbridge_pb
from pipworks_gateway.catalogue import Catalogue
from tests.e2e.descriptors import ADVERSARIAL_STRINGS, PROTO_SOURCES, RPCS, messages, requests

pytestmark = pytest.mark.xdist_group("e2e-descriptors")


def samples(strategy: st.SearchStrategy[Any], count: int = 60) -> list[Any]:
    """``count`` reproducible draws of ``strategy``."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def set_fields(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def test_every_method_the_gateway_serves_is_listed_once_with_its_shape():
    catalogue = Catalogue.load()
    pool = descriptor_pool.Default()
    served = {
        shape.path: (shape.client_streaming, shape.server_streaming)
        for service in catalogue.service_names
        if (PROTO_SOURCES / pool.FindServiceByName(service).file.name).is_file()
        for shape in catalogue.methods(service)
    }
    listed = {rpc.path: (rpc.client_streaming, rpc.server_streaming) for rpc in RPCS}
    assert listed == served
    assert len(RPCS) == len(listed)
    by_path = {rpc.path: rpc for rpc in RPCS}
    upload = by_path["/pipworks.kyc.v1.KycService/UploadDocument"]
    assert (upload.kind, upload.request_type) == ("stream_unary", kyc_pb.UploadDocumentRequest)
    download = by_path["/pipworks.kyc.v1.KycService/DownloadDocument"]
    assert download.kind == "unary_stream"
    assert download.response_type is kyc_pb.DownloadDocumentResponse
    assert by_path["/pipworks.identity.v1.IdentityService/Login"].public
    assert by_path["/pipworks.kyc.v1.KycService/ApproveApplication"].clients_refused
    assert not by_path["/pipworks.mtbridge.v1.MtBridgeService/Withdraw"].clients_refused


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_requests_survive_the_wire_and_set_every_field_sometimes(rpc):
    drawn = samples(requests(rpc))
    for message in drawn:
        assert type(message) is rpc.request_type
        assert rpc.request_type.FromString(message.SerializeToString()) == message
    seen = [set_fields(message) for message in drawn]
    for field in rpc.request_type.DESCRIPTOR.fields:
        assert any(field.name in fields for fields in seen), f"{field.name} never set"
        assert any(field.name not in fields for fields in seen), f"{field.name} always set"


def test_a_oneof_never_has_two_members_and_each_member_is_chosen():
    drawn = samples(messages(kyc_pb.UploadDocumentRequest.DESCRIPTOR))
    assert all(len(set_fields(m) & {"metadata", "chunk"}) <= 1 for m in drawn)
    assert {m.WhichOneof("part") for m in drawn} == {None, "metadata", "chunk"}


def test_out_of_range_timestamps_come_up():
    drawn = samples(messages(Timestamp.DESCRIPTOR), 200)
    assert any(t.seconds > 253402300799 for t in drawn)  # after 9999-12-31
    assert any(t.seconds < -62135596800 for t in drawn)  # before year 1
    assert any(not 0 <= t.nanos <= 999_999_999 for t in drawn)
    assert any(0 <= t.seconds < 2**32 and 0 <= t.nanos <= 999_999_999 for t in drawn)


def test_adversarial_strings_ints_and_enums_come_up():
    deposits = samples(messages(mtbridge_pb.DepositRequest.DESCRIPTOR), 400)
    amounts = {m.amount for m in deposits}
    for wanted in ("1e309", "NaN", "-0", "", "\x00", "2024-02-30"):
        assert wanted in ADVERSARIAL_STRINGS
    assert len(amounts & set(ADVERSARIAL_STRINGS)) >= 10
    assert any(len(m.idempotency_key) >= 70_000 for m in deposits)
    assert {-(2**63), 2**63 - 1} & {m.login for m in deposits}

    dimension = ib_pb.SummarizeCommissionsRequest.DESCRIPTOR.fields_by_name["dimension"]
    known = {value.number for value in dimension.enum_type.values}
    summaries = samples(messages(ib_pb.SummarizeCommissionsRequest.DESCRIPTOR), 200)
    assert any(m.dimension not in known for m in summaries)
    assert any(m.dimension in known - {0} for m in summaries)


def test_repeated_and_map_fields_get_several_entries():
    repeated = [
        (rpc, field)
        for rpc in RPCS
        for field in rpc.request_type.DESCRIPTOR.fields
        if field.is_repeated
    ]
    assert any(
        field.message_type and field.message_type.GetOptions().map_entry for _, field in repeated
    )
    for rpc, field in repeated:
        drawn = samples(requests(rpc))
        assert any(len(getattr(m, field.name)) >= 2 for m in drawn), field.full_name


def test_nested_messages_are_filled_in():
    drawn = samples(messages(mtbridge_pb.ListDealsRequest.DESCRIPTOR))
    assert any(m.HasField("page") and m.page.page_size != 0 for m in drawn)
    assert any(m.HasField("start_time") and m.start_time.seconds != 0 for m in drawn)
