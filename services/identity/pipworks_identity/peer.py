"""Where a call came from: client address, user agent and device id from gRPC metadata.

Behind the gateway the peer is the gateway itself, so its ``x-forwarded-for`` (first
entry: the original client) wins, and the caller's user agent arrives as
``x-forwarded-user-agent`` (gRPC replaces a forwarded ``user-agent`` with its own).
Identity is reachable only from the gateway (see the chart's NetworkPolicy), so these
headers cannot be forged by a client.
"""

from __future__ import annotations

import ipaddress

import grpc

from pipworks_identity.domain.sessions import ClientInfo
from pipworks_platform.peer import peer_ip

MAX_USER_AGENT_LENGTH = 512
MAX_DEVICE_ID_LENGTH = 128


def client_info(context: grpc.aio.ServicerContext) -> ClientInfo:
    metadata = {
        key.lower(): value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str)
    }
    forwarded = metadata.get("x-forwarded-for", "").split(",")[0].strip()
    address = _ip(forwarded) or peer_ip(context.peer() or "") or ""
    return ClientInfo(
        ip_address=address,
        user_agent=_printable(
            metadata.get("x-forwarded-user-agent") or metadata.get("user-agent", "")
        )[:MAX_USER_AGENT_LENGTH],
        device_id=_printable(metadata.get("x-device-id", ""))[:MAX_DEVICE_ID_LENGTH],
    )


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())
