"""Undecodable request bytes become INVALID_ARGUMENT in the handler, not gRPC's UNKNOWN."""

from __future__ import annotations

import pytest

from pipworks.events.v1 import identity_pb2
from pipworks_platform.errors import InvalidArgument
from pipworks_platform.malformed import (
    MalformedRequest,
    checked_stream,
    reject_malformed,
    tolerant,
)

GOOD = identity_pb2.UserRegistered(user_id="u-1").SerializeToString()
GARBAGE = b"\xff\xff\xff"


def test_tolerant_decodes_good_bytes_and_marks_bad_ones_with_the_type():
    decode = tolerant(identity_pb2.UserRegistered.FromString)
    assert decode(GOOD).user_id == "u-1"
    bad = decode(GARBAGE)
    assert isinstance(bad, MalformedRequest)
    assert bad.type_name == "pipworks.events.v1.UserRegistered"
    with pytest.raises(InvalidArgument) as raised:
        reject_malformed(bad)
    assert raised.value.reason == "MALFORMED_REQUEST"
    assert "pipworks.events.v1.UserRegistered" in str(raised.value)


async def test_a_stream_yields_until_its_first_undecodable_message():
    decode = tolerant(identity_pb2.UserRegistered.FromString)

    async def incoming():
        for data in (GOOD, GOOD, GARBAGE, GOOD):
            yield decode(data)

    seen = []
    with pytest.raises(InvalidArgument):
        async for message in checked_stream(incoming()):
            seen.append(message.user_id)
    assert seen == ["u-1", "u-1"]
