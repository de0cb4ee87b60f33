"""Applications: the client's draft and submission, the reviewer's decisions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pipworks.events.v1 import kyc_pb2
from pipworks_kyc.adapters.repositories import (
    ApplicationRepository,
    DocumentRepository,
    Hit,
    HitRepository,
    Profile,
    ProfileRepository,
)
from pipworks_kyc.domain.applications import OPEN, Application, State, new_application
from pipworks_kyc.domain.documents import DocumentInfo
from pipworks_kyc.domain.risk import Rating
from pipworks_kyc.domain.templates import ClientType, Template
from pipworks_kyc.handlers import screening
from pipworks_kyc.handlers.context import Deps, audit
from pipworks_kyc.handlers.levels import reachable_level
from pipworks_kyc.handlers.risk import rerate
from pipworks_kyc.handlers.templates import template_for, template_version
from pipworks_kyc.providers import Applicant, Verdict
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound

RATING_TO_EVENT = {
    Rating.LOW: kyc_pb2.KYC_RISK_RATING_LOW,
    Rating.MEDIUM: kyc_pb2.KYC_RISK_RATING_MEDIUM,
    Rating.HIGH: kyc_pb2.KYC_RISK_RATING_HIGH,
}
_REASON = re.compile(r"[A-Z][A-Z0-9_]{1,62}")
_CURRENCY = re.compile(r"[A-Z]{3}")


async def _profile(uow: UnitOfWork, user_id: uuid.UUID, *, lock: bool = False) -> Profile:
    profile = await ProfileRepository(uow.session).get(user_id, lock=lock)
    if profile is None:
        raise FailedPrecondition(
            "no KYC profile yet: the registration has not reached the KYC service",
            reason="PROFILE_NOT_FOUND",
        )
    return profile


async def my_requirements(deps: Deps, user_id: uuid.UUID, client_type: ClientType) -> Template:
    async with deps.uow() as uow:
        profile = await _profile(uow, user_id)
        app = await ApplicationRepository(uow.session, deps.cipher).latest_of(user_id)
        if app is not None and app.state in OPEN and app.client_type is client_type:
            return await template_version(uow, app.template_id, app.template_version)
        return await template_for(uow, client_type, profile.country_code)


async def save_draft(
    deps: Deps, user_id: uuid.UUID, client_type: ClientType, answers: dict[str, str], currency: str
) -> Application:
    if currency and not _CURRENCY.fullmatch(currency):
        raise InvalidArgument.for_field("currency", "must be an ISO 4217 code such as USD")
    now = deps.clock()
    async with deps.uow() as uow:
        profile = await _profile(uow, user_id, lock=True)
        apps = ApplicationRepository(uow.session, deps.cipher)
        app = await apps.latest_of(user_id, lock=True)
        if app is None or app.state not in OPEN:
            template = await template_for(uow, client_type, profile.country_code)
            template.validate_answers(answers, complete=False)
            app = new_application(
                user_id,
                template.template_id,
                template.version,
                client_type,
                profile.country_code,
                now,
            ).edited(answers, currency, now)
            await apps.add(app)
            await audit(uow, str(user_id), "kyc.application.created", f"application:{app.id}", now)
        else:
            if app.client_type is not client_type:
                raise FailedPrecondition(
                    "the client type of an application cannot change", reason="CLIENT_TYPE_FIXED"
                )
            template = await template_version(uow, app.template_id, app.template_version)
            template.validate_answers(answers, complete=False)
            app = app.edited(answers, currency, now)
            await apps.save(app)
        await uow.commit()
    return app


async def submit(deps: Deps, user_id: uuid.UUID) -> Application:
    now = deps.clock()
    async with deps.uow() as uow:
        await _profile(uow, user_id, lock=True)
        apps = ApplicationRepository(uow.session, deps.cipher)
        app = await apps.latest_of(user_id, lock=True)
        if app is None or app.state not in OPEN:
            raise FailedPrecondition("there is no draft to submit", reason="NO_DRAFT")
        template = await template_version(uow, app.template_id, app.template_version)
        template.validate_answers(app.answers, complete=True)
        if await reachable_level(deps, uow, user_id, template, now.date(), at_approval=False) < 1:
            raise FailedPrecondition(
                "upload the documents required for level 1 first", reason="DOCUMENTS_MISSING"
            )
        app = app.submitted(now)
        await apps.save(app)
        await screening.screen(deps, uow, app, now)
        app = await rerate(deps, uow, app, now)
        reference = await deps.provider.submit(Applicant(app.id, user_id, app.country_code))
        await apps.set_provider(app.id, reference, None)
        event = kyc_pb2.KycApplicationSubmitted(
            application_id=str(app.id),
            user_id=str(user_id),
            template_id=app.template_id,
            template_version=app.template_version,
            country_code=app.country_code,
            resubmission=app.is_resubmission,
        )
        event.submitted_at.FromDatetime(now)
        uow.emit(event)
        await audit(
            uow,
            str(user_id),
            "kyc.application.resubmitted" if app.is_resubmission else "kyc.application.submitted",
            f"application:{app.id}",
            now,
            template=f"{app.template_id}@{app.template_version}",
            risk=app.risk.rating.value if app.risk else None,
        )
        await uow.commit()
    return app


@dataclass(frozen=True)
class Status:
    level: int
    application: Application | None


async def my_status(deps: Deps, user_id: uuid.UUID) -> Status:
    async with deps.uow() as uow:
        profile = await _profile(uow, user_id)
        app = await ApplicationRepository(uow.session, deps.cipher).latest_of(user_id)
    return Status(profile.level, app)


# -- reviewer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    application: Application
    documents: list[DocumentInfo]
    hits: list[Hit]


async def queue(
    deps: Deps,
    *,
    states: Sequence[State],
    reviewer: str | None,
    country: str | None,
    rating: Rating | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Application]:
    async with deps.uow() as uow:
        return await ApplicationRepository(uow.session, deps.cipher).queue(
            states=states,
            reviewer=reviewer,
            country=country,
            rating=rating,
            after=after,
            limit=limit,
        )


async def review(deps: Deps, application_id: uuid.UUID) -> Review:
    async with deps.uow() as uow:
        app = await ApplicationRepository(uow.session, deps.cipher).get(application_id)
        if app is None:
            raise NotFound("application", str(application_id))
        docs = await DocumentRepository(uow.session, deps.cipher).of_user(
            app.user_id, active_only=True
        )
        hits = await HitRepository(uow.session).of_user(app.user_id)
    return Review(app, [d for d, _, _ in docs], hits)


async def _load(uow: UnitOfWork, deps: Deps, application_id: uuid.UUID) -> Application:
    app = await ApplicationRepository(uow.session, deps.cipher).get(application_id, lock=True)
    if app is None:
        raise NotFound("application", str(application_id))
    return app


async def claim(deps: Deps, reviewer: str, application_id: uuid.UUID) -> Application:
    now = deps.clock()
    async with deps.uow() as uow:
        app = await _load(uow, deps, application_id)
        claimed = app.claimed(reviewer, now)
        if claimed is not app:
            await ApplicationRepository(uow.session, deps.cipher).save(claimed)
            await audit(uow, reviewer, "kyc.application.claimed", f"application:{app.id}", now)
            await uow.commit()
    return claimed


async def approve(
    deps: Deps, reviewer: str, application_id: uuid.UUID, note: str
) -> tuple[Application, bool]:
    now = deps.clock()
    async with deps.uow() as uow:
        app = await _load(uow, deps, application_id)
        template = await template_version(uow, app.template_id, app.template_version)
        level = await reachable_level(
            deps, uow, app.user_id, template, now.date(), at_approval=True
        )
        open_hits, sanctions = screening.blocks_approval(
            await HitRepository(uow.session).of_user(app.user_id)
        )
        decided, done = app.approved(reviewer, level, open_hits, sanctions, now)
        await ApplicationRepository(uow.session, deps.cipher).save(decided)
        subject = f"application:{app.id}"
        if not done:
            await audit(uow, reviewer, "kyc.application.first_approval", subject, now, reason=note)
            await uow.commit()
            return decided, False
        await ProfileRepository(uow.session).set_level(app.user_id, level, now, approved=True)
        assert decided.risk is not None
        event = kyc_pb2.KycApplicationApproved(
            application_id=str(app.id),
            user_id=str(app.user_id),
            level=level,
            currency=decided.currency,
            country_code=decided.country_code,
            risk_rating=RATING_TO_EVENT[decided.risk.rating],
        )
        event.approved_at.FromDatetime(now)
        uow.emit(event)
        await audit(
            uow,
            reviewer,
            "kyc.application.approved",
            subject,
            now,
            reason=note,
            level=level,
            risk=decided.risk.rating.value,
            first_approver=decided.first_approver_id,
        )
        await uow.commit()
    return decided, True


async def reject(deps: Deps, reviewer: str, application_id: uuid.UUID, reason: str) -> Application:
    if not _REASON.fullmatch(reason):
        raise InvalidArgument.for_field("reason", "must be UPPER_SNAKE, e.g. DOCUMENT_FORGED")
    now = deps.clock()
    async with deps.uow() as uow:
        app = (await _load(uow, deps, application_id)).rejected(reviewer, reason, now)
        await ApplicationRepository(uow.session, deps.cipher).save(app)
        event = kyc_pb2.KycApplicationRejected(
            application_id=str(app.id), user_id=str(app.user_id), reason=reason
        )
        event.rejected_at.FromDatetime(now)
        uow.emit(event)
        await audit(
            uow, reviewer, "kyc.application.rejected", f"application:{app.id}", now, reason=reason
        )
        await uow.commit()
    return app


async def request_information(
    deps: Deps, reviewer: str, application_id: uuid.UUID, reason: str
) -> Application:
    reason = reason.strip()
    if not reason or len(reason) > 1000:
        raise InvalidArgument.for_field("reason", "must say what is needed (1-1000 characters)")
    now = deps.clock()
    async with deps.uow() as uow:
        app = (await _load(uow, deps, application_id)).information_requested(reviewer, reason, now)
        await ApplicationRepository(uow.session, deps.cipher).save(app)
        await audit(
            uow,
            reviewer,
            "kyc.application.information_requested",
            f"application:{app.id}",
            now,
            reason=reason,
        )
        await uow.commit()
    return app


async def override_risk(
    deps: Deps, reviewer: str, application_id: uuid.UUID, rating: Rating, reason: str
) -> Application:
    reason = reason.strip()
    if not reason:
        raise InvalidArgument.for_field("reason", "is required")
    now = deps.clock()
    async with deps.uow() as uow:
        before = await _load(uow, deps, application_id)
        app = before.risk_overridden(reviewer, rating, reason, now)
        await ApplicationRepository(uow.session, deps.cipher).save(app)
        await audit(
            uow,
            reviewer,
            "kyc.risk.overridden",
            f"application:{app.id}",
            now,
            rating=rating.value,
            previous=before.risk.rating.value if before.risk else None,
            reason=reason,
        )
        await uow.commit()
    return app


async def apply_provider_verdict(deps: Deps, verdict: Verdict) -> bool:
    """Record a provider's verdict for the reviewer; False for an unknown application."""
    now = deps.clock()
    async with deps.uow() as uow:
        apps = ApplicationRepository(uow.session, deps.cipher)
        app = await apps.get(verdict.application_id, lock=True)
        if app is None:
            return False
        await apps.set_provider(app.id, verdict.reference or None, verdict.verdict)
        await audit(
            uow,
            f"provider:{verdict.provider}",
            "kyc.provider.verdict",
            f"application:{app.id}",
            now,
            verdict=verdict.verdict,
            reference=verdict.reference,
        )
        await uow.commit()
    return True
