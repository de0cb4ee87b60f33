"""Rating an application's risk from its answers, the country table, confirmed hits and
anti-fraud signals."""

from __future__ import annotations

from datetime import datetime

from pipworks_kyc.adapters.repositories import (
    ApplicationRepository,
    CountryRiskRepository,
    HitRepository,
    ProfileRepository,
)
from pipworks_kyc.domain.applications import Application
from pipworks_kyc.domain.risk import Assessment, Inputs, assess
from pipworks_kyc.domain.templates import parse_date, parse_decimal
from pipworks_kyc.handlers.context import Deps
from pipworks_platform.db import UnitOfWork


async def rate(deps: Deps, uow: UnitOfWork, app: Application, now: datetime) -> Assessment:
    profile = await ProfileRepository(uow.session).get(app.user_id)
    hits = await HitRepository(uow.session).of_user(app.user_id)
    answers = app.answers
    inputs = Inputs(
        country_code=app.country_code,
        country_rating=await CountryRiskRepository(uow.session).get(app.country_code),
        topics_of_confirmed_hits=[h.topics for h in hits if h.status == "confirmed"],
        source_of_funds=answers.get("source_of_funds", ""),
        annual_income=parse_decimal(answers.get("annual_income", "")),
        expected_deposits=parse_decimal(answers.get("expected_annual_deposits", "")),
        date_of_birth=parse_date(answers.get("date_of_birth", "")),
        today=now.date(),
        antifraud_alerts=profile.antifraud_alerts if profile else 0,
        antifraud_restricted=profile.antifraud_restricted if profile else False,
    )
    return assess(inputs, deps.config.risk)


async def rerate(deps: Deps, uow: UnitOfWork, app: Application, now: datetime) -> Application:
    """Recompute the rating unless a reviewer overrode it; saves the application."""
    if app.risk is not None and app.risk.overridden:
        return app
    rated = app.rated(await rate(deps, uow, app, now), now)
    await ApplicationRepository(uow.session, deps.cipher).save(rated)
    return rated
