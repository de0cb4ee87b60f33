"""Who the caller is, and which headers cross the gateway."""

from __future__ import annotations

import uuid

import pytest

from pipworks_gateway.metadata import (
    outbound_metadata,
    rate_limit_key,
    request_id,
    response_headers,
)
from pipworks_platform.peer import peer_ip


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:203.0.113.9:51234", "203.0.113.9"),
        ("ipv6:[2001:db8::1]:51234", "2001:db8::1"),
        ("ipv6:%5B2001:db8::1%5D:51234", "2001:db8::1"),
        ("ipv6:[::ffff:203.0.113.9]:51234", "203.0.113.9"),
        ("unix:/var/run/gateway.sock", None),
        ("ipv4:not-an-address:1", None),
        ("", None),
    ],
)
def test_client_ip_comes_from_the_peer_address(peer, ip):
    assert peer_ip(peer) == ip


def test_ipv6_clients_are_limited_per_64_network():
    assert rate_limit_key("2001:db8:1:2:aaaa::1") == rate_limit_key("2001:db8:1:2:bbbb::2")
    assert rate_limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_limit_key("203.0.113.9") == "203.0.113.9"
    assert rate_limit_key(None) == "unknown"


def test_caller_metadata_is_forwarded_without_transport_or_identity_claims():
    incoming = [
        (":authority", "gateway"),
        ("content-type", "application/grpc"),
        ("user-agent", "portal/2.1 grpc-c/58"),
        ("grpc-accept-encoding", "gzip"),
        ("te", "trailers"),
        ("authorization", "Bearer t"),
        ("x-tenant", "b1"),
        ("x-trace-bin", b"\x00\x01"),
        ("x-request-id", "caller-id"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("traceparent", "00-abc-def-01"),
    ]
    forwarded = outbound_metadata(
        incoming, request_id="rid", client_ip="203.0.113.9", also_drop=frozenset({"traceparent"})
    )
    assert forwarded == [
        ("authorization", "Bearer t"),
        ("x-tenant", "b1"),
        ("x-trace-bin", b"\x00\x01"),
        ("x-request-id", "rid"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-user-agent", "portal/2.1 grpc-c/58"),
    ]


def test_no_address_means_no_forwarded_for():
    assert outbound_metadata([], request_id="rid", client_ip=None) == [("x-request-id", "rid")]


@pytest.mark.parametrize("sent", ["req-7f3a", "0b5e1b4e-6a0f-4f37-9a43-5b8c4f0b8b5d", "a.b:c_d"])
def test_a_sane_request_id_is_kept(sent):
    assert request_id([("x-request-id", sent)]) == sent


@pytest.mark.parametrize("sent", ["", "has space", "x" * 129, "-leading-dash", b"bytes"])
def test_a_missing_or_odd_request_id_is_replaced(sent):
    for incoming in ([], [("x-request-id", sent)]):
        assert uuid.UUID(request_id(incoming)).version == 4


def test_response_headers_carry_the_backends_and_the_request_id():
    backend = [("x-backend", "1"), ("x-request-id", "backend-id"), ("content-type", "x")]
    assert response_headers(backend, request_id="rid") == [
        ("x-backend", "1"),
        ("x-request-id", "rid"),
    ]
