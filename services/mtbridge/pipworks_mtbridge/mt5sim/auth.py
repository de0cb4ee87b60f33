"""The simulator's side of the MT5 Web API handshake, bound to the keep-alive connection.

Like MT5, authentication belongs to the TCP connection it was made on: a new connection
(or a restarted server) is unauthenticated and gets HTTP 403 until it runs the handshake.
The hash is written out here independently of the client's code, so the tests exercise
two implementations of the protocol against each other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pipworks_mtbridge.mt5sim.model import SimError

__all__ = ["AuthSessions"]


def _md5(data: bytes) -> bytes:
    # MD5 is what the MT5 Web API handshake specifies; the simulator must speak it.
    return hashlib.md5(data, usedforsecurity=False).digest()


@dataclass(slots=True)
class _Connection:
    transport: asyncio.BaseTransport
    srv_rand: bytes | None = None
    authenticated: bool = False


class AuthSessions:
    """Handshake state per connection for the one manager account the simulator has."""

    def __init__(self, manager_login: int, password: str, *, lie: bool = False) -> None:
        self._login = manager_login
        self._ph = _md5(_md5(password.encode("utf-16-le")) + b"WebAPI")
        self._lie = lie  # answer cli_rand wrongly: a "lying server" for client tests
        self._connections: dict[int, _Connection] = {}

    def _connection(self, transport: asyncio.BaseTransport | None) -> _Connection:
        if transport is None:
            raise SimError(7, "Network error")
        entry = self._connections.get(id(transport))
        if entry is None or entry.transport is not transport:
            entry = _Connection(transport)
            self._connections[id(transport)] = entry
        return entry

    def start(
        self, transport: asyncio.BaseTransport | None, login: int, kind: str, version: int
    ) -> str:
        """``auth/start``: a fresh ``srv_rand`` (hex). Unknown logins are refused only at
        ``auth/answer``, so the start step does not reveal which logins exist."""
        if kind.lower() != "manager" or version <= 0:
            raise SimError(3, "Invalid parameters")
        entry = self._connection(transport)
        entry.authenticated = False
        entry.srv_rand = secrets.token_bytes(16) if login == self._login else b""
        return (entry.srv_rand or secrets.token_bytes(16)).hex()

    def answer(
        self, transport: asyncio.BaseTransport | None, srv_rand_answer: str, cli_rand: str
    ) -> str:
        """``auth/answer``: verify the client's proof, return ours (``cli_rand_answer``)."""
        entry = self._connection(transport)
        srv_rand, entry.srv_rand = entry.srv_rand, None
        try:
            client_proof = bytes.fromhex(srv_rand_answer)
            challenge = bytes.fromhex(cli_rand)
        except ValueError:
            raise SimError(3, "Invalid parameters") from None
        if not challenge:
            raise SimError(3, "Invalid parameters")
        if not srv_rand or not hmac.compare_digest(client_proof, _md5(self._ph + srv_rand)):
            raise SimError(1001, "Invalid account")
        entry.authenticated = True
        proof = _md5(self._ph + challenge)
        if self._lie:
            proof = _md5(proof)
        return proof.hex()

    def is_authenticated(self, transport: asyncio.BaseTransport | None) -> bool:
        if transport is None:
            return False
        entry = self._connections.get(id(transport))
        return entry is not None and entry.transport is transport and entry.authenticated

    def drop_all(self) -> int:
        """Forget every session (the next API request on each connection gets 403)."""
        count = sum(1 for e in self._connections.values() if e.authenticated)
        self._connections.clear()
        return count

    def sweep(self) -> None:
        """Forget connections that have closed."""
        for key, entry in list(self._connections.items()):
            if entry.transport.is_closing():
                del self._connections[key]

    @property
    def active(self) -> int:
        return sum(1 for e in self._connections.values() if e.authenticated)
