"""Composition root of the kyc service: ``python -m pipworks_kyc [serve|migrate|verify-audit]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import structlog

from pipworks.kyc.v1 import kyc_service_pb2, kyc_service_pb2_grpc
from pipworks_kyc import __version__
from pipworks_kyc.adapters.blobstore import BlobStore, FilesystemBlobStore, S3BlobStore
from pipworks_kyc.api import KycApi
from pipworks_kyc.handlers import Deps, KycConfig
from pipworks_kyc.handlers.applications import apply_provider_verdict
from pipworks_kyc.handlers.events import Consumers
from pipworks_kyc.handlers.screening import reload_lists
from pipworks_kyc.providers import ManualReviewProvider, Provider, WebhookProvider, WebhookReceiver
from pipworks_kyc.scheduler import ExpiryScheduler
from pipworks_kyc.screening.service import Screening
from pipworks_kyc.settings import KycSettings
from pipworks_platform.audit import SYSTEM_ACTOR
from pipworks_platform.consumer import Subscription
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService

log = structlog.get_logger(__name__)

EVENT_RETRIES = 30
EVENT_BACKOFF = (1.0, 5.0, 30.0, 120.0)


def blob_store(settings: KycSettings) -> BlobStore:
    if settings.kyc_blob_store == "s3":
        assert settings.kyc_s3_bucket is not None
        secret = settings.kyc_s3_secret_access_key
        return S3BlobStore.connect(
            settings.kyc_s3_bucket,
            endpoint_url=settings.kyc_s3_endpoint_url,
            region=settings.kyc_s3_region,
            access_key_id=settings.kyc_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            prefix=settings.kyc_s3_prefix,
        )
    return FilesystemBlobStore(settings.kyc_blob_dir)


def build_deps(infra: Infrastructure) -> Deps:
    settings = cast(KycSettings, infra.settings)
    provider: Provider = (
        WebhookProvider() if settings.kyc_provider == "webhook" else ManualReviewProvider()
    )
    return Deps(
        uow=infra.unit_of_work,
        cipher=infra.cipher,
        blobs=blob_store(settings),
        screening=Screening(
            opensanctions_files=settings.opensanctions_files,
            ofac_sdn_files=settings.ofac_sdn_files,
            threshold=settings.kyc_screening_threshold,
        ),
        provider=provider,
        config=KycConfig(
            max_document_bytes=settings.kyc_max_document_bytes,
            expiry_notice_days=settings.kyc_expiry_notice_days,
        ),
    )


def subscriptions(consumers: Consumers) -> list[Subscription]:
    return [
        Subscription(
            durable="kyc-user-registered",
            subjects=["pipworks.identity.v1.user.registered"],
            handler=consumers.on_user_registered,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
        ),
        Subscription(
            durable="kyc-antifraud-signals",
            subjects=[
                "pipworks.antifraud.v1.alert.raised",
                "pipworks.antifraud.v1.client.restricted",
                "pipworks.antifraud.v1.client.unrestricted",
            ],
            handler=consumers.on_antifraud,
            max_deliver=EVENT_RETRIES,
            backoff=EVENT_BACKOFF,
        ),
    ]


async def build(infra: Infrastructure) -> Components:
    return await assemble(build_deps(infra), infra)


async def assemble(deps: Deps, infra: Infrastructure) -> Components:
    """The service's components over the given dependencies (tests substitute the clock)."""
    settings = cast(KycSettings, infra.settings)
    if deps.screening.opensanctions_files or deps.screening.ofac_sdn_files:
        counts, _, _ = await reload_lists(deps, SYSTEM_ACTOR, only_if_changed=True)
        log.info("screening lists loaded", entries=counts)
    scheduler = ExpiryScheduler(deps, settings.kyc_expiry_interval_seconds)
    on_stop = [scheduler.stop_and_wait]
    if settings.kyc_webhook_port is not None and settings.kyc_webhook_secret is not None:

        async def apply(verdict):  # type: ignore[no-untyped-def]
            return await apply_provider_verdict(deps, verdict)

        receiver = WebhookReceiver(
            secret=settings.kyc_webhook_secret.get_secret_value().encode(),
            apply=apply,
            host=settings.kyc_webhook_host,
            port=settings.kyc_webhook_port,
            tolerance_seconds=settings.kyc_webhook_tolerance_seconds,
        )
        await receiver.start()
        on_stop.append(receiver.stop)
    api = KycApi(deps, infra.service_info)
    return Components(
        api=[ApiService.of(kyc_service_pb2, kyc_service_pb2_grpc, "KycService", api)],
        subscriptions=subscriptions(Consumers(deps)),
        background=[scheduler.run],
        on_stop=on_stop,
    )


DEFINITION = ServiceDefinition(
    name="kyc",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
    settings_type=KycSettings,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)
