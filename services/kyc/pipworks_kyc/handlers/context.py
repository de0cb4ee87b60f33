"""What every use case works with: the unit of work, cipher, blob store, screening index,
configuration and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipworks_kyc.adapters.blobstore import BlobStore
from pipworks_kyc.domain.risk import RiskPolicy
from pipworks_kyc.providers import Provider
from pipworks_kyc.screening.service import Screening
from pipworks_platform.audit import AuditLogRepository, AuditRecord
from pipworks_platform.crypto import FieldCipher
from pipworks_platform.db import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class KycConfig:
    max_document_bytes: int = 10 * 1024 * 1024
    expiry_notice_days: int = 30
    risk: RiskPolicy = field(default_factory=RiskPolicy)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    uow: UnitOfWorkFactory
    cipher: FieldCipher
    blobs: BlobStore
    screening: Screening
    provider: Provider
    config: KycConfig = field(default_factory=KycConfig)
    clock: Callable[[], datetime] = utc_now


async def audit(
    uow: UnitOfWork, actor: str, action: str, subject: str, now: datetime, **details: Any
) -> None:
    """Append a transition to the hash-chained audit log, in the caller's transaction."""
    await AuditLogRepository(uow.session).append(
        AuditRecord(actor=actor, action=action, subject=subject, details=details), now
    )
