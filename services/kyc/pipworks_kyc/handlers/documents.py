"""Documents: encrypted upload, listing, decrypted download, and the expiry scheduler's
pass that notifies, expires and lowers levels."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import structlog

from pipworks.events.v1 import kyc_pb2
from pipworks_kyc.adapters.repositories import (
    ApplicationRepository,
    DocumentRepository,
    ProfileRepository,
)
from pipworks_kyc.domain.applications import OPEN
from pipworks_kyc.domain.documents import (
    DocumentInfo,
    ExpiryStep,
    Status,
    expiry_step,
    sniff_content_type,
)
from pipworks_kyc.domain.templates import ClientType, Template, default_template, parse_date
from pipworks_kyc.handlers.context import Deps, audit
from pipworks_kyc.handlers.levels import reachable_level
from pipworks_kyc.handlers.templates import template_for, template_version
from pipworks_platform.audit import SYSTEM_ACTOR
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Violations,
)

log = structlog.get_logger(__name__)

_NUMBER = re.compile(r"[A-Za-z0-9 /-]{1,40}")
REVIEWER_ROLES = frozenset({"compliance", "admin"})
EXPIRY_BATCH = 500


@dataclass(frozen=True)
class UploadMetadata:
    kind: str
    number: str
    issued_on: str
    expires_on: str


def blob_context(document_id: uuid.UUID) -> bytes:
    return f"kyc.documents.file:{document_id}".encode()


def blob_key(user_id: uuid.UUID, document_id: uuid.UUID) -> str:
    return f"documents/{user_id}/{document_id}"


def check_metadata(meta: UploadMetadata, today: date) -> tuple[date | None, date | None]:
    v = Violations()
    v.check(meta.kind, "metadata.kind", "is required")
    v.check(
        not meta.number or _NUMBER.fullmatch(meta.number),
        "metadata.document_number",
        "must be 1-40 letters, digits, spaces, / or -",
    )
    issued = parse_date(meta.issued_on) if meta.issued_on else None
    expires = parse_date(meta.expires_on) if meta.expires_on else None
    if meta.issued_on and v.check(
        issued is not None, "metadata.issued_on", "must be a date YYYY-MM-DD"
    ):
        v.check(
            issued is None or issued <= today, "metadata.issued_on", "must not be in the future"
        )
    if meta.expires_on and v.check(
        expires is not None, "metadata.expires_on", "must be a date YYYY-MM-DD"
    ):
        v.check(
            expires is None or expires > today, "metadata.expires_on", "must not be in the past"
        )
    v.raise_if_any(reason="DOCUMENT_METADATA_INVALID")
    return issued, expires


async def _applicable_template(
    uow: UnitOfWork, deps: Deps, user_id: uuid.UUID, country: str
) -> Template:
    apps = ApplicationRepository(uow.session, deps.cipher)
    app = await apps.latest_of(user_id)
    if app is not None and app.state in OPEN:
        return await template_version(uow, app.template_id, app.template_version)
    approved = await apps.latest_approved(user_id)
    if approved is not None:
        return await template_for(uow, approved.client_type, country)
    return await template_for(uow, ClientType.INDIVIDUAL, country)


async def upload(deps: Deps, user_id: uuid.UUID, meta: UploadMetadata, data: bytes) -> DocumentInfo:
    now = deps.clock()
    issued, expires = check_metadata(meta, now.date())
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise InvalidArgument.for_field(
            "chunk", "must be a JPEG, PNG or PDF file", reason="DOCUMENT_TYPE_NOT_ALLOWED"
        )
    if len(data) > deps.config.max_document_bytes:
        raise InvalidArgument.for_field(
            "chunk",
            f"the file exceeds {deps.config.max_document_bytes} bytes",
            reason="DOCUMENT_TOO_LARGE",
        )
    if not data:
        raise InvalidArgument.for_field("chunk", "the file is empty")
    async with deps.uow() as uow:
        profile = await ProfileRepository(uow.session).get(user_id, lock=True)
        if profile is None:
            raise FailedPrecondition("no KYC profile yet", reason="PROFILE_NOT_FOUND")
        template = await _applicable_template(uow, deps, user_id, profile.country_code)
        spec = template.document_spec_for(meta.kind)
        if spec is None:
            accepted = sorted({k for d in template.documents for k in d.accepted_kinds})
            raise InvalidArgument.for_field(
                "metadata.kind",
                f"must be one of {', '.join(accepted)}",
                reason="DOCUMENT_KIND_NOT_ASKED",
            )
        if spec.identity and expires is None:
            raise InvalidArgument.for_field(
                "metadata.expires_on", "an identity document needs its expiry date"
            )
        doc = DocumentInfo(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=meta.kind,
            content_type=content_type,
            size=len(data),
            status=Status.ACTIVE,
            number=meta.number,
            issued_on=issued,
            expires_on=expires,
            expiring_notified=False,
        )
        key = blob_key(user_id, doc.id)
        # The file is sealed before it leaves the process and bound to its document id.
        await deps.blobs.put(key, deps.cipher.encrypt(data, context=blob_context(doc.id)))
        try:
            docs = DocumentRepository(uow.session, deps.cipher)
            replaced = await docs.replace_active(user_id, spec.key, now)
            await docs.add(
                doc, requirement_key=spec.key, identity=spec.identity, blob_key=key, now=now
            )
            await audit(
                uow,
                str(user_id),
                "kyc.document.uploaded",
                f"user:{user_id}",
                now,
                document_id=str(doc.id),
                kind=doc.kind,
                replaced=replaced,
            )
            if spec.identity and profile.level < profile.approved_level:
                await _restore_level(
                    deps, uow, profile.user_id, profile.level, profile.approved_level, now
                )
            await uow.commit()
        except BaseException:
            await deps.blobs.delete(key)
            raise
    return doc


async def _current_level(deps: Deps, uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> int:
    """The level the client's documents reach now under their approved template."""
    app = await ApplicationRepository(uow.session, deps.cipher).latest_approved(user_id)
    template = (
        await template_version(uow, app.template_id, app.template_version)
        if app is not None
        else default_template(ClientType.INDIVIDUAL)
    )
    return await reachable_level(deps, uow, user_id, template, now.date(), at_approval=False)


async def _restore_level(
    deps: Deps, uow: UnitOfWork, user_id: uuid.UUID, current: int, approved: int, now: datetime
) -> None:
    reached = await _current_level(deps, uow, user_id, now)
    level = min(approved, reached)
    if level <= current:
        return
    await ProfileRepository(uow.session).set_level(user_id, level, now)
    _level_changed(uow, user_id, current, level, "DOCUMENT_REPLACED", now)
    await audit(
        uow,
        SYSTEM_ACTOR,
        "kyc.level.restored",
        f"user:{user_id}",
        now,
        level=level,
        previous=current,
    )


def _level_changed(
    uow: UnitOfWork, user_id: uuid.UUID, previous: int, level: int, reason: str, now: datetime
) -> None:
    event = kyc_pb2.KycLevelChanged(
        user_id=str(user_id), previous_level=previous, level=level, reason=reason
    )
    event.occurred_at.FromDatetime(now)
    uow.emit(event)


async def list_mine(
    deps: Deps, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[tuple[DocumentInfo, datetime]]:
    async with deps.uow() as uow:
        rows = await DocumentRepository(uow.session, deps.cipher).of_user(
            user_id, after=after, limit=limit
        )
    return [(doc, at) for doc, _, at in rows]


async def download(
    deps: Deps, caller: str, roles: frozenset[str], document_id: uuid.UUID
) -> tuple[DocumentInfo, datetime, bytes]:
    """The document and its decrypted bytes, for its owner or a reviewer only."""
    reviewer = not roles.isdisjoint(REVIEWER_ROLES)
    async with deps.uow() as uow:
        found = await DocumentRepository(uow.session, deps.cipher).get(document_id)
        # Someone else's document is reported as missing: its existence is not revealed.
        if found is None or (not reviewer and str(found[0].user_id) != caller):
            if found is not None:
                log.warning("document access refused", document_id=str(document_id))
            raise NotFound("document", str(document_id))
        doc, key, uploaded_at = found
        if reviewer and str(doc.user_id) != caller:
            now = deps.clock()
            await audit(
                uow,
                caller,
                "kyc.document.downloaded",
                f"user:{doc.user_id}",
                now,
                document_id=str(doc.id),
            )
            await uow.commit()
    sealed = await deps.blobs.get(key)
    return doc, uploaded_at, deps.cipher.decrypt(sealed, context=blob_context(doc.id))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass
class ExpiryPass:
    expiring: int = 0
    expired: int = 0
    lowered: int = 0


async def run_expiry(deps: Deps) -> ExpiryPass:
    """One pass over active expiring documents (dates are encrypted, so they are read in
    batches and judged in memory)."""
    result = ExpiryPass()
    after: uuid.UUID | None = None
    while True:
        async with deps.uow() as uow:
            batch = await DocumentRepository(uow.session, deps.cipher).expiring_batch(
                after, EXPIRY_BATCH
            )
        if not batch:
            return result
        after = batch[-1][0].id
        today = deps.clock().date()
        for doc, _key, identity in batch:
            step = expiry_step(doc, today, deps.config.expiry_notice_days)
            if step is not ExpiryStep.NONE:
                await _apply_step(deps, doc, identity, step, result)


async def _apply_step(
    deps: Deps, doc: DocumentInfo, identity: bool, step: ExpiryStep, result: ExpiryPass
) -> None:
    assert doc.expires_on is not None
    now = deps.clock()
    async with deps.uow() as uow:
        docs = DocumentRepository(uow.session, deps.cipher)
        current = await docs.lock(doc.id)
        if current is None or current[0] != Status.ACTIVE.value:
            return  # replaced or expired meanwhile
        if step is ExpiryStep.EXPIRING and current[1]:
            return  # noticed meanwhile
        if step is ExpiryStep.EXPIRING:
            await docs.mark(doc.id, now, notified=True)
            days_left = (doc.expires_on - now.date()).days
            event = kyc_pb2.KycDocumentExpiring(
                document_id=str(doc.id),
                user_id=str(doc.user_id),
                kind=doc.kind,
                days_left=days_left,
            )
            event.expires_at.FromDatetime(_midnight(doc.expires_on))
            uow.emit(event)
            result.expiring += 1
        else:
            await docs.mark(doc.id, now, status=Status.EXPIRED)
            expired = kyc_pb2.KycDocumentExpired(
                document_id=str(doc.id), user_id=str(doc.user_id), kind=doc.kind
            )
            expired.expired_at.FromDatetime(_midnight(doc.expires_on))
            uow.emit(expired)
            await audit(
                uow,
                SYSTEM_ACTOR,
                "kyc.document.expired",
                f"user:{doc.user_id}",
                now,
                document_id=str(doc.id),
            )
            result.expired += 1
            if identity and await _lower_level(deps, uow, doc.user_id, now):
                result.lowered += 1
        await uow.commit()


async def _lower_level(deps: Deps, uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> bool:
    profiles = ProfileRepository(uow.session)
    profile = await profiles.get(user_id, lock=True)
    if profile is None or profile.level == 0:
        return False
    reached = await _current_level(deps, uow, user_id, now)
    if reached >= profile.level:
        return False
    await profiles.set_level(user_id, reached, now)
    _level_changed(uow, user_id, profile.level, reached, "DOCUMENT_EXPIRED", now)
    await audit(
        uow,
        SYSTEM_ACTOR,
        "kyc.level.lowered",
        f"user:{user_id}",
        now,
        level=reached,
        previous=profile.level,
    )
    return True


__all__ = ["ExpiryPass", "UploadMetadata", "download", "list_mine", "run_expiry", "upload"]
