"""External verification providers (SumSub, Onfido and the like) behind one interface,
and the signed-webhook receiver through which they hand back verdicts.

A provider is told about an applicant when the application is submitted and answers
later with a webhook; its verdict is recorded on the application and in the audit log
for the reviewer, who still takes the decision. The built-in ``manual`` provider does
nothing: reviewers verify the documents themselves.

Webhook requests are ``POST /webhooks/<provider>`` with headers
``X-Pipworks-Timestamp`` (Unix seconds) and ``X-Pipworks-Signature``
(hex HMAC-SHA256 of ``"<timestamp>." + raw body`` under the shared secret); requests
outside the timestamp tolerance are refused so a captured request cannot be replayed
later. The body is JSON: ``{"application_id": ..., "verdict": "approved"|"rejected",
"reference": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

TIMESTAMP_HEADER = "X-Pipworks-Timestamp"
SIGNATURE_HEADER = "X-Pipworks-Signature"
MAX_BODY_BYTES = 64 * 1024
VERDICTS = frozenset({"approved", "rejected", "review"})


@dataclass(frozen=True)
class Applicant:
    application_id: uuid.UUID
    user_id: uuid.UUID
    country_code: str


class Provider(Protocol):
    name: str

    async def submit(self, applicant: Applicant) -> str | None:
        """Register the applicant with the provider; its reference, if any."""


class ManualReviewProvider:
    """Reviewers verify documents themselves; nothing leaves the service."""

    name = "manual"

    async def submit(self, applicant: Applicant) -> str | None:
        return None


class WebhookProvider:
    """A provider that is told about applicants out of band and answers by webhook.

    The submission hook is injectable so a provider's client can be plugged in; the
    default only derives the reference the provider will echo back.
    """

    name = "webhook"

    def __init__(self, send: Callable[[Applicant], Awaitable[str]] | None = None) -> None:
        self._send = send

    async def submit(self, applicant: Applicant) -> str | None:
        if self._send is not None:
            return await self._send(applicant)
        return f"pw-{applicant.application_id}"


@dataclass(frozen=True)
class Verdict:
    provider: str
    application_id: uuid.UUID
    verdict: str
    reference: str


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float, tolerance: int
) -> bool:
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body)
    return hmac.compare_digest(expected, signature.strip().lower())


class WebhookReceiver:
    """An aiohttp server on its own port, feeding verified verdicts to ``apply``."""

    def __init__(
        self,
        *,
        secret: bytes,
        apply: Callable[[Verdict], Awaitable[bool]],
        host: str,
        port: int,
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._apply = apply
        self._host = host
        self._port = port
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/webhooks/{provider}", self._handle)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("webhook receiver listening", port=self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            self._secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.headers.get(SIGNATURE_HEADER, ""),
            body,
            now=self._clock(),
            tolerance=self._tolerance,
        ):
            return web.json_response({"error": "BAD_SIGNATURE"}, status=401)
        try:
            payload = json.loads(body)
            verdict = Verdict(
                provider=request.match_info["provider"][:40],
                application_id=uuid.UUID(str(payload["application_id"])),
                verdict=str(payload["verdict"]),
                reference=str(payload.get("reference") or "")[:200],
            )
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "BAD_PAYLOAD"}, status=400)
        if verdict.verdict not in VERDICTS:
            return web.json_response({"error": "BAD_VERDICT"}, status=400)
        if not await self._apply(verdict):
            return web.json_response({"error": "UNKNOWN_APPLICATION"}, status=404)
        return web.json_response({"status": "accepted"})
