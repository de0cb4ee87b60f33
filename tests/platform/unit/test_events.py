"""Event envelope: subjects come from the proto catalogue; payloads decode by type."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from pipworks.events.v1 import identity_pb2
from pipworks_platform.events import (
    UnknownEventError,
    build_outgoing,
    decode_event,
    subject_of,
)
from pipworks_platform.streams import producer_of, service_stream


def test_subject_comes_from_the_message_option():
    assert subject_of(identity_pb2.UserRegistered) == "pipworks.identity.v1.user.registered"
    assert producer_of(subject_of(identity_pb2.UserRegistered)) == "identity"
    assert service_stream("identity").name == "PIPWORKS_IDENTITY"


def test_a_message_without_a_subject_is_not_an_event():
    with pytest.raises(UnknownEventError):
        subject_of(timestamp_pb2.Timestamp())


def test_outgoing_event_round_trips_through_decode():
    event = identity_pb2.UserRegistered(user_id="u-1", country_code="CY", referral_code="IB7")
    outgoing = build_outgoing(event)
    assert outgoing.event_type == "pipworks.events.v1.UserRegistered"
    assert outgoing.event_id.version == 4
    assert decode_event(outgoing.event_type, outgoing.payload) == event


def test_unknown_types_are_refused():
    with pytest.raises(UnknownEventError):
        decode_event("pipworks.events.v1.Nope", b"")
    with pytest.raises(UnknownEventError):
        decode_event("google.protobuf.Timestamp", b"")
