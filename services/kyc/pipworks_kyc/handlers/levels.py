"""Which level a client's current documents reach under a template."""

from __future__ import annotations

import uuid
from datetime import date

from pipworks_kyc.adapters.repositories import DocumentRepository
from pipworks_kyc.domain.documents import DocumentInfo, is_fresh
from pipworks_kyc.domain.templates import Template
from pipworks_kyc.handlers.context import Deps
from pipworks_platform.db import UnitOfWork


def satisfied(
    template: Template, docs: list[tuple[DocumentInfo, str]], today: date, *, at_approval: bool
) -> set[str]:
    """Requirement keys met by active, unexpired documents (and fresh ones at approval)."""
    keys: set[str] = set()
    for doc, key in docs:
        spec = next((d for d in template.documents if d.key == key), None)
        if spec is None or (doc.expires_on is not None and doc.expires_on <= today):
            continue
        if at_approval and not is_fresh(doc, spec.max_age_days, today):
            continue
        keys.add(key)
    return keys


async def reachable_level(
    deps: Deps,
    uow: UnitOfWork,
    user_id: uuid.UUID,
    template: Template,
    today: date,
    *,
    at_approval: bool,
) -> int:
    rows = await DocumentRepository(uow.session, deps.cipher).of_user(user_id, active_only=True)
    docs = [(doc, key) for doc, key, _ in rows]
    return template.reachable_level(satisfied(template, docs, today, at_approval=at_approval))
