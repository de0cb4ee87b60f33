"""The kyc service's settings: ``PIPWORKS_KYC_*`` on top of what every service reads.

Secrets (``PIPWORKS_KYC_WEBHOOK_SECRET``, ``PIPWORKS_KYC_S3_SECRET_ACCESS_KEY``, and the
platform's ``PIPWORKS_ENCRYPTION_KEYS``) belong in a Kubernetes Secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from pipworks_platform.settings import ServiceSettings

SAMPLE_DIR = Path(__file__).parent / "data"


class KycSettings(ServiceSettings):
    # Documents.
    kyc_max_document_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    kyc_blob_store: str = Field(default="filesystem", pattern="^(filesystem|s3)$")
    # The filesystem store's directory; in Kubernetes a mounted volume (or use s3).
    kyc_blob_dir: Path = Path(".data/kyc-documents")
    kyc_s3_bucket: str | None = None
    kyc_s3_endpoint_url: str | None = None
    kyc_s3_region: str | None = None
    kyc_s3_prefix: str = ""
    kyc_s3_access_key_id: str | None = None
    kyc_s3_secret_access_key: SecretStr | None = None

    # Expiry scheduler.
    kyc_expiry_notice_days: int = Field(default=30, ge=1, le=365)
    kyc_expiry_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)

    # Screening: the lists loaded at start-up and by ReloadLists, comma-separated paths
    # (empty: none of that kind).
    kyc_opensanctions_files: Annotated[tuple[Path, ...], NoDecode] = ()
    kyc_ofac_sdn_files: Annotated[tuple[Path, ...], NoDecode] = ()
    kyc_screening_threshold: float = Field(default=88.0, ge=50, le=100)
    # Load the sample lists shipped with the service (demos and tests only).
    kyc_sample_lists: bool = False

    # External verification provider and its signed webhook receiver.
    kyc_provider: str = Field(default="manual", pattern="^(manual|webhook)$")
    kyc_webhook_port: int | None = Field(default=None, ge=0, le=65535)
    kyc_webhook_host: str = "0.0.0.0"  # a pod listens on all its interfaces
    kyc_webhook_secret: SecretStr | None = None
    kyc_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)

    @field_validator("kyc_opensanctions_files", "kyc_ofac_sdn_files", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KycSettings:
        if self.kyc_blob_store == "s3" and not self.kyc_s3_bucket:
            raise ValueError("PIPWORKS_KYC_S3_BUCKET is required with PIPWORKS_KYC_BLOB_STORE=s3")
        if self.kyc_webhook_port is not None and (
            self.kyc_webhook_secret is None or len(self.kyc_webhook_secret.get_secret_value()) < 16
        ):
            raise ValueError(
                "PIPWORKS_KYC_WEBHOOK_SECRET (16+ characters) is required with a webhook port"
            )
        return self

    @property
    def opensanctions_files(self) -> tuple[Path, ...]:
        sample = (SAMPLE_DIR / "opensanctions_sample.csv",) if self.kyc_sample_lists else ()
        return (*sample, *self.kyc_opensanctions_files)

    @property
    def ofac_sdn_files(self) -> tuple[Path, ...]:
        sample = (SAMPLE_DIR / "ofac_sdn_sample.csv",) if self.kyc_sample_lists else ()
        return (*sample, *self.kyc_ofac_sdn_files)
