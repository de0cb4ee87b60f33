"""The KYC constructor: requirement templates and the country risk table."""

from __future__ import annotations

from pipworks_kyc.adapters.repositories import CountryRiskRepository, TemplateRepository
from pipworks_kyc.domain.risk import Rating
from pipworks_kyc.domain.templates import ClientType, Template, default_template, validate_template
from pipworks_kyc.handlers.context import Deps, audit
from pipworks_platform.db import UnitOfWork
from pipworks_platform.errors import NotFound


async def put_template(deps: Deps, actor: str, template: Template) -> Template:
    validate_template(template)
    now = deps.clock()
    async with deps.uow() as uow:
        stored = await TemplateRepository(uow.session).add(template, actor, now)
        await audit(
            uow,
            actor,
            "kyc.template.published",
            f"template:{stored.template_id}",
            now,
            version=stored.version,
            client_type=stored.client_type.value,
            country_code=stored.country_code,
        )
        await uow.commit()
    return stored


async def list_templates(deps: Deps) -> list[Template]:
    async with deps.uow() as uow:
        return await TemplateRepository(uow.session).latest_versions()


async def template_for(uow: UnitOfWork, client_type: ClientType, country: str) -> Template:
    """The template that applies now: country-specific, else default, else built-in."""
    found = await TemplateRepository(uow.session).latest_for(client_type, country)
    return found or default_template(client_type)


async def template_version(uow: UnitOfWork, template_id: str, version: int) -> Template:
    """The exact version an application was started with."""
    if version == 0:
        for client_type in ClientType:
            builtin = default_template(client_type)
            if builtin.template_id == template_id:
                return builtin
    found = await TemplateRepository(uow.session).get(template_id, version)
    if found is None:
        raise NotFound("template", f"{template_id}@{version}")
    return found


async def set_country_risk(deps: Deps, actor: str, country: str, rating: Rating) -> None:
    now = deps.clock()
    async with deps.uow() as uow:
        previous = await CountryRiskRepository(uow.session).set(country, rating, actor, now)
        await audit(
            uow,
            actor,
            "kyc.country_risk.set",
            f"country:{country}",
            now,
            rating=rating.value,
            previous=None if previous is None else previous.value,
        )
        await uow.commit()
