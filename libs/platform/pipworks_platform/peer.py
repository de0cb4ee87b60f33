"""The client address of a gRPC call, from the peer string grpc gives the server."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import unquote


@lru_cache(maxsize=4096)  # one peer string per connection, and a connection carries many calls
def peer_ip(peer: str) -> str | None:
    """The IP address in a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:%5B::1%5D:5``).

    IPv4-mapped IPv6 addresses come back as IPv4; anything else (unix sockets) is None.
    """
    scheme, _, address = unquote(peer).partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return None
    host = address.rpartition(":")[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)
