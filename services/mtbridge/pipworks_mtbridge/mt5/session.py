"""One authenticated keep-alive connection to an MT5 Web API server.

MT5 binds authentication to the HTTP keep-alive connection, so the session uses a
connector limited to a single connection and re-runs the handshake whenever the server
answers HTTP 403 (session unknown) or the connection is lost. It also runs a periodic
``/api/test/access`` ping so an idle connection is neither closed nor forgotten.

Retry policy:
- HTTP 403: the request was refused before it ran, so re-authenticate and repeat it once,
  whatever it is.
- Transport failures, timeouts, HTTP 5xx and transient retcodes: idempotent reads are
  retried up to ``read_retries`` times with exponential backoff; a write is repeated only
  if it certainly never left the client (connection refused), otherwise it fails with
  ``Mt5Unavailable(maybe_applied=True)`` for the caller to reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pipworks_mtbridge.mt5.errors import Mt5AuthError, Mt5Error, Mt5Unavailable, Retcode
from pipworks_mtbridge.mt5.protocol import PasswordHash, decode_hex, new_cli_rand, parse_envelope
from pipworks_platform.backoff import Backoff
from pipworks_platform.logging import get_logger

__all__ = ["Mt5Session"]

log = get_logger(__name__)

Params = Mapping[str, str | int]


class _SessionLost(Exception):
    """HTTP 403: the server does not know this connection (any more)."""


class _Transient(Exception):
    """A failure worth retrying; ``sent`` tells whether the request may have run."""

    def __init__(self, reason: str, *, sent: bool, retcode: int = Retcode.CONNECTION) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.retcode = retcode


class Mt5Session:
    """Authenticated request/response over one keep-alive connection."""

    def __init__(
        self,
        base_url: str,
        manager_login: int,
        password: PasswordHash,
        *,
        agent: str,
        version: int,
        timeout: float,
        keepalive_interval: float,
        read_retries: int,
        ssl: ssl_module.SSLContext | bool | None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s):// URL")
        if parts.username or parts.password or parts.query:
            raise ValueError("base_url must not carry credentials or a query")
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._login = manager_login
        self._password = password
        self._agent = agent
        self._version = version
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keepalive_interval = keepalive_interval
        self._read_retries = max(0, read_retries)
        self._ssl = ssl
        self._http: aiohttp.ClientSession | None = None
        self._auth_lock = asyncio.Lock()
        self._generation = 0  # bumped on every successful handshake
        self._authenticated = False
        self._keepalive: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"Mt5Session(base_url={self._base!r}, manager_login={self._login})"

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Authenticate now (raising if the server refuses) and start the keep-alive."""
        await self.request("/api/test/access", idempotent=True, retries=0)

    async def close(self) -> None:
        self._closed = True
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        await self._drop_connection()

    def _start_keepalive(self) -> None:
        if self._keepalive is None and self._keepalive_interval > 0:
            self._keepalive = asyncio.create_task(self._keepalive_loop(), name="mt5-keepalive")

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_interval)
            try:
                await self.request("/api/test/access", idempotent=True, retries=0)
            except Mt5Error as exc:
                log.warning("mt5 keepalive failed", server=self._base, retcode=exc.retcode)
            except Exception as exc:  # keep pinging whatever happened to one ping
                log.warning("mt5 keepalive failed", server=self._base, error=type(exc).__name__)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(
                limit=1,  # the MT5 session lives on a single keep-alive connection
                keepalive_timeout=max(60.0, 3 * self._keepalive_interval),
                ssl=True if self._ssl is None else self._ssl,
            )
            self._http = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, raise_for_status=False
            )
        return self._http

    async def _drop_connection(self) -> None:
        """Close the connection (and with it the server-side session)."""
        self._authenticated = False
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    # -- requests ----------------------------------------------------------------------

    async def request(
        self,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        idempotent: bool,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its reply envelope (retcode already checked)."""
        attempts = 1 + ((self._read_retries if retries is None else retries) if idempotent else 0)
        backoff = Backoff(initial=0.1, maximum=2.0)
        reauthenticated = False
        failures = 0
        while True:
            if self._closed:
                raise Mt5Unavailable("the MT5 client is closed")
            generation = self._generation
            try:
                if not self._authenticated:
                    generation = await self._ensure_authenticated(generation)
                return await self._send(path, params, body)
            except _SessionLost:
                self._session_lost(generation)
                if reauthenticated:
                    raise Mt5AuthError(
                        "the server refused the session after re-authentication"
                    ) from None
                reauthenticated = True
                log.info("mt5 session lost, re-authenticating", server=self._base, path=path)
            except _Transient as exc:
                self._session_lost(generation)
                failures += 1
                # A write is repeated only when it certainly never reached the server.
                limit = attempts if idempotent else (1 if exc.sent else 2)
                if failures >= limit:
                    raise Mt5Unavailable(
                        f"MT5 server unavailable: {exc.reason}",
                        exc.retcode,
                        maybe_applied=exc.sent and not idempotent,
                    ) from None
                log.info(
                    "mt5 request failed, retrying",
                    server=self._base,
                    path=path,
                    reason=exc.reason,
                    attempt=failures,
                )
                await asyncio.sleep(backoff.next_delay())
            except Mt5Unavailable as exc:  # a transient retcode in the envelope
                failures += 1
                if not idempotent or failures >= attempts:
                    raise
                log.info("mt5 transient retcode, retrying", path=path, retcode=exc.retcode)
                await asyncio.sleep(backoff.next_delay())

    async def _ensure_authenticated(self, generation: int) -> int:
        """Handshake if needed; the new generation. Handshake failures never ran the request."""
        try:
            await self._authenticate(generation)
        except _Transient as exc:
            raise _Transient(exc.reason, sent=False, retcode=exc.retcode) from None
        self._start_keepalive()
        return self._generation

    def _session_lost(self, generation: int) -> None:
        if generation == self._generation:
            self._authenticated = False

    async def _send(self, path: str, params: Params | None, body: Any) -> dict[str, Any]:
        """One HTTP exchange; raises ``_SessionLost``, ``_Transient`` or a typed error."""
        url = self._base + path
        query = {k: str(v) for k, v in (params or {}).items()}
        http = self._client()
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        method = "GET" if body is None else "POST"
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            async with http.request(method, url, params=query, data=data, headers=headers) as resp:
                payload = await resp.read()
                status = resp.status
        except aiohttp.ClientSSLError:
            raise _Transient(
                "TLS handshake or certificate verification failed", sent=False
            ) from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            raise _Transient("connection refused or unreachable", sent=False) from None
        except TimeoutError:
            raise _Transient("timed out", sent=True, retcode=Retcode.TIMEOUT) from None
        except aiohttp.ClientError as exc:
            raise _Transient(f"connection lost ({type(exc).__name__})", sent=True) from None
        if status == 403:
            raise _SessionLost
        if status >= 500:
            raise _Transient(f"HTTP {status}", sent=True)
        if status != 200:
            raise Mt5Error(f"unexpected HTTP status {status}")
        return parse_envelope(payload)

    # -- handshake ---------------------------------------------------------------------

    async def _authenticate(self, generation: int) -> None:
        """Run the handshake unless another task already did since ``generation``."""
        async with self._auth_lock:
            if self._authenticated and self._generation != generation:
                return
            self._authenticated = False
            try:
                start = await self._send(
                    "/api/auth/start",
                    {
                        "version": self._version,
                        "agent": self._agent,
                        "login": self._login,
                        "type": "manager",
                    },
                    None,
                )
                srv_rand = decode_hex(start.get("srv_rand"), "srv_rand")
                cli_rand = new_cli_rand()
                reply = await self._send(
                    "/api/auth/answer",
                    {
                        "srv_rand_answer": self._password.answer(srv_rand).hex(),
                        "cli_rand": cli_rand.hex(),
                    },
                    None,
                )
            except _SessionLost:
                raise Mt5AuthError("the server refused the handshake (HTTP 403)") from None
            except Mt5AuthError:
                log.warning("mt5 authentication refused", server=self._base, login=self._login)
                raise
            server_answer = decode_hex(reply.get("cli_rand_answer"), "cli_rand_answer")
            if not self._password.verify(cli_rand, server_answer):
                log.error(
                    "mt5 server failed to prove the password; refusing it",
                    server=self._base,
                    login=self._login,
                )
                raise Mt5AuthError("the server's cli_rand_answer is wrong: not a genuine server")
            self._generation += 1
            self._authenticated = True
            log.info("mt5 authenticated", server=self._base, login=self._login)
