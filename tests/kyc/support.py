"""Helpers for the kyc tests: the service in-process on real PostgreSQL, NATS and
sockets with a controllable clock, callers with tokens, events and database probes."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
from google.protobuf.message import Message

from pipworks.events.v1 import identity_pb2
from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks.kyc.v1 import kyc_service_pb2_grpc as pb_grpc
from pipworks_kyc.handlers import Deps
from pipworks_kyc.main import DEFINITION, assemble, build_deps
from pipworks_kyc.providers import WebhookReceiver
from pipworks_kyc.settings import KycSettings
from pipworks_platform.runtime import Infrastructure, ServiceProcess
from tests.harness import DatabaseProbes
from tests.helpers import eventually, publish
from tests.tokens import TokenAuthority

ENCRYPTION_KEY_ID = "kyc-test"
ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

# Smallest valid-looking files of each allowed type.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(64)
JPEG = b"\xff\xd8\xff\xe0" + b"JFIF passport scan " + os.urandom(64)
PDF = b"%PDF-1.7\n% proof of address: 12 Baker Street\n" + os.urandom(64)


class Clock:
    """The service's clock; tests move it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Kyc(DatabaseProbes):
    port: int
    database_url: str
    deps: Deps
    clock: Clock
    channel: grpc.aio.Channel
    stub: pb_grpc.KycServiceStub
    authority: TokenAuthority
    blob_dir: Path
    nats_url: str
    webhook: WebhookReceiver | None = None

    def webhook_port(self) -> int:
        assert self.webhook is not None
        assert self.webhook.port is not None
        return self.webhook.port

    # -- callers -----------------------------------------------------------------------

    def client(self, user_id: uuid.UUID) -> tuple[tuple[str, str], ...]:
        return self.authority.metadata(subject=str(user_id), roles=("client",), aal=1)

    def reviewer(self, user_id: str | None = None, *, aal: int = 2) -> tuple[tuple[str, str], ...]:
        return self.authority.metadata(
            subject=user_id or str(uuid.uuid4()), roles=("compliance",), aal=aal, mfa=True
        )

    def admin(self) -> tuple[tuple[str, str], ...]:
        return self.authority.metadata(subject=str(uuid.uuid4()), roles=("admin",), aal=2, mfa=True)

    # -- events in ---------------------------------------------------------------------

    async def publish(self, event: Message) -> None:
        """Publish an event on its producer's stream, as that service's relay would."""
        client = await nats.connect(self.nats_url)
        try:
            await publish(client.jetstream(), event, str(uuid.uuid4()))
        finally:
            await client.close()

    async def register(self, country: str = "GB") -> uuid.UUID:
        """A user registers with identity; wait until the KYC profile exists."""
        user_id = uuid.uuid4()
        event = identity_pb2.UserRegistered(user_id=str(user_id), country_code=country)
        event.registered_at.FromDatetime(self.clock())
        await self.publish(event)
        await eventually(
            lambda: self.scalar("SELECT count(*) FROM profiles WHERE user_id = $1", user_id)
        )
        return user_id

    # -- client flows ------------------------------------------------------------------

    async def upload(
        self,
        user_id: uuid.UUID,
        data: bytes,
        *,
        kind: str = "passport",
        expires_on: str = "2031-01-01",
        issued_on: str = "2021-01-01",
        number: str = "P1234567",
        chunk: int = 1000,
        metadata: Iterable[tuple[str, str]] | None = None,
    ) -> pb.Document:
        def parts() -> Iterable[pb.UploadDocumentRequest]:
            yield pb.UploadDocumentRequest(
                metadata=pb.DocumentMetadata(
                    kind=kind, document_number=number, issued_on=issued_on, expires_on=expires_on
                )
            )
            for start in range(0, len(data), chunk):
                yield pb.UploadDocumentRequest(chunk=data[start : start + chunk])

        reply = await self.stub.UploadDocument(
            _aiter(parts()), metadata=metadata or self.client(user_id)
        )
        return reply.document

    async def download(self, document_id: str, metadata: Any) -> tuple[pb.Document, bytes]:
        data = bytearray()
        first: pb.Document | None = None
        async for part in self.stub.DownloadDocument(
            pb.DownloadDocumentRequest(document_id=document_id), metadata=metadata
        ):
            if first is None:
                first = part.document
            data.extend(part.chunk)
        assert first is not None
        return first, bytes(data)

    async def ready_applicant(
        self,
        *,
        first: str = "Amelia",
        last: str = "Hartley",
        country: str = "GB",
        passport_expires: str = "2031-01-01",
        **extra: str,
    ) -> uuid.UUID:
        """A registered client with a complete draft and documents for level 2."""
        user = await self.register(country)
        md = self.client(user)
        fields = {
            "first_name": first,
            "last_name": last,
            "date_of_birth": "1990-05-17",
            "nationality": country,
            "source_of_funds": "salary",
            "annual_income": "85000",
            "expected_annual_deposits": "10000",
            **extra,
        }
        await self.stub.SaveDraft(pb.SaveDraftRequest(fields=fields, currency="USD"), metadata=md)
        await self.upload(user, JPEG, expires_on=passport_expires)
        issued = (self.clock().date() - timedelta(days=10)).isoformat()
        await self.upload(user, PDF, kind="proof_of_address", expires_on="", issued_on=issued)
        return user


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def settings_for(database_url: str, nats_url: str, blob_dir: Path, **overrides: Any) -> KycSettings:
    return KycSettings(
        **{
            "database_url": database_url,
            "nats_url": nats_url,
            "grpc_address": "127.0.0.1:0",
            "metrics_port": 0,
            "encryption_keys": f"{ENCRYPTION_KEY_ID}:{ENCRYPTION_KEY}",
            "encryption_active_key": ENCRYPTION_KEY_ID,
            "kyc_blob_dir": blob_dir,
            "kyc_sample_lists": True,
            "kyc_expiry_interval_seconds": 3600,
            "shutdown_grace_seconds": 2,
            **overrides,
        }
    )


@contextlib.asynccontextmanager
async def running_kyc(
    database_url: str,
    nats_url: str,
    authority: TokenAuthority,
    blob_dir: Path,
    *,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[Kyc]:
    clock = clock or Clock()
    captured: dict[str, Deps] = {}

    async def build(infra: Infrastructure):  # type: ignore[no-untyped-def]
        deps = dataclasses.replace(build_deps(infra), clock=clock)
        captured["deps"] = deps
        components = await assemble(deps, infra)
        for hook in components.on_stop:
            if isinstance(getattr(hook, "__self__", None), WebhookReceiver):
                captured["webhook"] = hook.__self__  # type: ignore[attr-defined]
        return components

    definition = dataclasses.replace(DEFINITION, build=build, jwks_source=authority.jwks_source())
    process = ServiceProcess(
        definition, settings_for(database_url, nats_url, blob_dir, **overrides)
    )
    try:
        assert await process.start()
        assert process.port is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") as channel:
            yield Kyc(
                port=process.port,
                database_url=database_url,
                deps=captured["deps"],
                clock=clock,
                channel=channel,
                stub=pb_grpc.KycServiceStub(channel),
                authority=authority,
                blob_dir=blob_dir,
                nats_url=nats_url,
                webhook=captured.get("webhook"),  # type: ignore[arg-type]
            )
    finally:
        await process.stop()
