"""What headers cross the gateway, and who the caller is.

Callers' metadata is forwarded (``authorization`` included: every backend verifies the
token again) except transport headers, which gRPC sets per hop, and headers that claim
something about the caller's network identity: the gateway alone says who the caller
is, in ``x-forwarded-for``, from the connection's peer address. Trace context is
re-injected per hop by the client tracing interceptor, so the caller's copy is dropped.

Pure: no gRPC, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache

REQUEST_ID = "x-request-id"
FORWARDED_FOR = "x-forwarded-for"
# gRPC owns user-agent (a value set per call is replaced), so the caller's one travels
# under its own name for services that record it (identity's sessions).
FORWARDED_USER_AGENT = "x-forwarded-user-agent"

_TRANSPORT = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)
_CALLER_IDENTITY = frozenset({"forwarded", "x-real-ip", "x-client-ip", REQUEST_ID})
_NEVER_FORWARDED = _TRANSPORT | _CALLER_IDENTITY
_NOTHING_MORE: frozenset[str] = frozenset()
_REQUEST_ID_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

MetadataValue = str | bytes
Metadata = Sequence[tuple[str, MetadataValue]]


def _dropped(key: str, extra: frozenset[str]) -> bool:
    return key.startswith((":", "grpc-", "x-forwarded-")) or key in _NEVER_FORWARDED or key in extra


def request_id(incoming: Iterable[tuple[str, MetadataValue]]) -> str:
    """The caller's ``x-request-id`` if it is a sane token, else a new uuid4."""
    for key, value in incoming:
        if key == REQUEST_ID:
            if isinstance(value, str) and _REQUEST_ID_FORMAT.fullmatch(value):
                return value
            break
    return str(uuid.uuid4())


def outbound_metadata(
    incoming: Iterable[tuple[str, MetadataValue]],
    *,
    request_id: str,
    client_ip: str | None,
    also_drop: frozenset[str] = _NOTHING_MORE,
) -> list[tuple[str, MetadataValue]]:
    """The metadata a backend receives for a call that arrived with ``incoming``."""
    forwarded: list[tuple[str, MetadataValue]] = []
    user_agent: MetadataValue | None = None
    for key, value in incoming:
        if key == "user-agent":
            user_agent = value
        elif not _dropped(key, also_drop):
            forwarded.append((key, value))
    forwarded.append((REQUEST_ID, request_id))
    if client_ip is not None:
        forwarded.append((FORWARDED_FOR, client_ip))
    if user_agent:
        forwarded.append((FORWARDED_USER_AGENT, user_agent))
    return forwarded


def response_headers(
    backend: Iterable[tuple[str, MetadataValue]], *, request_id: str
) -> list[tuple[str, MetadataValue]]:
    """Initial metadata for the caller: the backend's own headers plus ``x-request-id``."""
    headers = [(k, v) for k, v in backend if not _dropped(k, _NOTHING_MORE)]
    headers.append((REQUEST_ID, request_id))
    return headers


@lru_cache(maxsize=4096)
def rate_limit_key(ip: str | None) -> str:
    """The client a per-address limit counts against: the IPv4 address, or the IPv6 /64.

    An IPv6 host usually holds a whole /64, so counting single addresses would let it
    mint a fresh budget per request.
    """
    if ip is None:
        return "unknown"
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip
