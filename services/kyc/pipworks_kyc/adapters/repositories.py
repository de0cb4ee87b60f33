"""Repositories of the kyc database; each works inside the caller's unit of work.

Encrypted columns are sealed and opened here, bound to their row: answers to the
application id, document numbers and dates to the document id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_kyc.adapters.tables import (
    applications,
    country_risk,
    documents,
    list_entries,
    list_loads,
    profiles,
    screening_hits,
    templates,
)
from pipworks_kyc.domain.applications import Application, State
from pipworks_kyc.domain.documents import DocumentInfo, Status
from pipworks_kyc.domain.risk import Assessment, Rating
from pipworks_kyc.domain.templates import ClientType, Template, from_json, to_json
from pipworks_kyc.screening.matcher import ListEntry
from pipworks_platform.crypto import FieldCipher


@dataclass(frozen=True)
class Profile:
    user_id: uuid.UUID
    country_code: str
    level: int
    approved_level: int
    antifraud_alerts: int
    antifraud_restricted: bool


@dataclass(frozen=True)
class Hit:
    id: uuid.UUID
    user_id: uuid.UUID
    application_id: uuid.UUID | None
    list_source: str
    list_entry_id: str
    entry_name: str
    topics: tuple[str, ...]
    score: Decimal
    status: str
    resolved_by: str | None
    resolution_reason: str
    created_at: datetime


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def create(self, user_id: uuid.UUID, country: str, registered_at: datetime) -> bool:
        result = await self._s.execute(
            pg_insert(profiles)
            .values(
                user_id=user_id,
                country_code=country,
                level=0,
                approved_level=0,
                antifraud_alerts=0,
                antifraud_restricted=False,
                registered_at=registered_at,
                updated_at=registered_at,
            )
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)

    async def get(self, user_id: uuid.UUID, *, lock: bool = False) -> Profile | None:
        query = sa.select(profiles).where(profiles.c.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = (await self._s.execute(query)).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return Profile(
            m["user_id"],
            m["country_code"],
            m["level"],
            m["approved_level"],
            m["antifraud_alerts"],
            m["antifraud_restricted"],
        )

    async def set_level(
        self, user_id: uuid.UUID, level: int, now: datetime, *, approved: bool = False
    ) -> None:
        values: dict[str, Any] = {"level": level, "updated_at": now}
        if approved:
            values["approved_level"] = level
        await self._s.execute(
            sa.update(profiles).where(profiles.c.user_id == user_id).values(values)
        )

    async def antifraud_signal(
        self,
        user_id: uuid.UUID,
        now: datetime,
        *,
        alert: bool = False,
        restricted: bool | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if alert:
            values["antifraud_alerts"] = profiles.c.antifraud_alerts + 1
        if restricted is not None:
            values["antifraud_restricted"] = restricted
        await self._s.execute(
            sa.update(profiles).where(profiles.c.user_id == user_id).values(values)
        )


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, template: Template, actor: str, now: datetime) -> Template:
        await self._s.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(
                    sa.func.hashtext("kyc.template:" + template.template_id)
                )
            )
        )
        latest = await self._s.scalar(
            sa.select(sa.func.max(templates.c.version)).where(
                templates.c.template_id == template.template_id
            )
        )
        version = (latest or 0) + 1
        await self._s.execute(
            sa.insert(templates).values(
                template_id=template.template_id,
                version=version,
                client_type=template.client_type.value,
                country_code=template.country_code,
                definition=to_json(template),
                created_by=actor,
                created_at=now,
            )
        )
        return Template(**{**template.__dict__, "version": version})

    async def get(self, template_id: str, version: int) -> Template | None:
        row = (
            await self._s.execute(
                sa.select(templates).where(
                    templates.c.template_id == template_id, templates.c.version == version
                )
            )
        ).one_or_none()
        return None if row is None else _template(row._mapping)

    async def latest_for(self, client_type: ClientType, country: str) -> Template | None:
        """The newest template for the country, else the newest default of the client type."""
        for where_country in (country, ""):
            row = (
                await self._s.execute(
                    sa.select(templates)
                    .where(
                        templates.c.client_type == client_type.value,
                        templates.c.country_code == where_country,
                    )
                    .order_by(templates.c.created_at.desc(), templates.c.version.desc())
                    .limit(1)
                )
            ).one_or_none()
            if row is not None:
                return _template(row._mapping)
        return None

    async def latest_versions(self) -> list[Template]:
        rows = (
            await self._s.execute(
                sa.select(templates)
                .distinct(templates.c.template_id)
                .order_by(templates.c.template_id, templates.c.version.desc())
            )
        ).all()
        return [_template(r._mapping) for r in rows]


def _template(m: sa.RowMapping) -> Template:
    return from_json(
        m["template_id"], m["version"], m["client_type"], m["country_code"], m["definition"]
    )


class CountryRiskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def set(self, country: str, rating: Rating, actor: str, now: datetime) -> Rating | None:
        previous = await self.get(country)
        await self._s.execute(
            pg_insert(country_risk)
            .values(country_code=country, rating=rating.value, updated_by=actor, updated_at=now)
            .on_conflict_do_update(
                index_elements=[country_risk.c.country_code],
                set_={"rating": rating.value, "updated_by": actor, "updated_at": now},
            )
        )
        return previous

    async def get(self, country: str) -> Rating | None:
        value = await self._s.scalar(
            sa.select(country_risk.c.rating).where(country_risk.c.country_code == country)
        )
        return None if value is None else Rating(value)


class ApplicationRepository:
    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self._s = session
        self._cipher = cipher

    def _context(self, application_id: uuid.UUID) -> bytes:
        return f"kyc.applications.answers:{application_id}".encode()

    def _values(self, app: Application) -> dict[str, Any]:
        answers = json.dumps(app.answers, sort_keys=True)
        return {
            "user_id": app.user_id,
            "template_id": app.template_id,
            "template_version": app.template_version,
            "client_type": app.client_type.value,
            "state": app.state.value,
            "answers_encrypted": self._cipher.encrypt_text(answers, context=self._context(app.id)),
            "country_code": app.country_code,
            "currency": app.currency,
            "submissions": app.submissions,
            "submitted_at": app.submitted_at,
            "reviewer_id": app.reviewer_id,
            "first_approver_id": app.first_approver_id,
            "reason": app.reason,
            "level": app.level,
            "risk_rating": None if app.risk is None else app.risk.rating.value,
            "risk": None if app.risk is None else app.risk.to_json(),
            "created_at": app.created_at,
            "updated_at": app.updated_at,
        }

    async def add(self, app: Application) -> None:
        await self._s.execute(sa.insert(applications).values(id=app.id, **self._values(app)))

    async def save(self, app: Application) -> None:
        await self._s.execute(
            sa.update(applications).where(applications.c.id == app.id).values(self._values(app))
        )

    async def get(self, application_id: uuid.UUID, *, lock: bool = False) -> Application | None:
        query = sa.select(applications).where(applications.c.id == application_id)
        if lock:
            query = query.with_for_update()
        row = (await self._s.execute(query)).one_or_none()
        return None if row is None else self._application(row._mapping)

    async def latest_of(self, user_id: uuid.UUID, *, lock: bool = False) -> Application | None:
        """The client's application in progress, else the newest closed one."""
        closed = applications.c.state.in_([State.APPROVED.value, State.REJECTED.value])
        query = (
            sa.select(applications)
            .where(applications.c.user_id == user_id)
            .order_by(closed, applications.c.created_at.desc(), applications.c.id)
            .limit(1)
        )
        if lock:
            query = query.with_for_update()
        row = (await self._s.execute(query)).one_or_none()
        return None if row is None else self._application(row._mapping)

    async def latest_approved(self, user_id: uuid.UUID) -> Application | None:
        row = (
            await self._s.execute(
                sa.select(applications)
                .where(applications.c.user_id == user_id, applications.c.state == State.APPROVED)
                .order_by(applications.c.updated_at.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else self._application(row._mapping)

    async def latest_approved_batch(self, after: uuid.UUID | None, limit: int) -> list[Application]:
        """Each profiled client's newest approved application, in user id order."""
        query = (
            sa.select(applications)
            .distinct(applications.c.user_id)
            .join(profiles, profiles.c.user_id == applications.c.user_id)
            .where(applications.c.state == State.APPROVED)
        )
        if after is not None:
            query = query.where(applications.c.user_id > after)
        query = query.order_by(applications.c.user_id, applications.c.updated_at.desc())
        rows = (await self._s.execute(query.limit(limit))).all()
        return [self._application(r._mapping) for r in rows]

    async def queue(
        self,
        *,
        states: Sequence[State],
        reviewer: str | None,
        country: str | None,
        rating: Rating | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Application]:
        order_at = sa.func.coalesce(applications.c.submitted_at, applications.c.created_at)
        query = sa.select(applications)
        if states:
            query = query.where(applications.c.state.in_([s.value for s in states]))
        if reviewer:
            query = query.where(applications.c.reviewer_id == reviewer)
        if country:
            query = query.where(applications.c.country_code == country)
        if rating:
            query = query.where(applications.c.risk_rating == rating.value)
        if after is not None:
            query = query.where(sa.tuple_(order_at, applications.c.id) > sa.tuple_(*after))
        query = query.order_by(order_at, applications.c.id).limit(limit)
        rows = (await self._s.execute(query)).all()
        return [self._application(r._mapping) for r in rows]

    async def counts_by_state(self) -> dict[str, int]:
        rows = await self._s.execute(
            sa.select(applications.c.state, sa.func.count()).group_by(applications.c.state)
        )
        return {state: count for state, count in rows}

    async def pending_before(self, moment: datetime) -> int:
        return int(
            await self._s.scalar(
                sa.select(sa.func.count()).where(
                    applications.c.state.in_([State.SUBMITTED.value, State.IN_REVIEW.value]),
                    applications.c.submitted_at < moment,
                )
            )
            or 0
        )

    async def set_provider(
        self, application_id: uuid.UUID, reference: str | None, verdict: str | None
    ) -> None:
        values: dict[str, Any] = {}
        if reference is not None:
            values["provider_reference"] = reference
        if verdict is not None:
            values["provider_verdict"] = verdict
        if values:
            await self._s.execute(
                sa.update(applications).where(applications.c.id == application_id).values(values)
            )

    def _application(self, m: sa.RowMapping) -> Application:
        answers = json.loads(
            self._cipher.decrypt_text(m["answers_encrypted"], context=self._context(m["id"]))
        )
        return Application(
            id=m["id"],
            user_id=m["user_id"],
            template_id=m["template_id"],
            template_version=m["template_version"],
            client_type=ClientType(m["client_type"]),
            state=State(m["state"]),
            answers=answers,
            country_code=m["country_code"],
            currency=m["currency"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            submitted_at=m["submitted_at"],
            submissions=m["submissions"],
            reviewer_id=m["reviewer_id"],
            first_approver_id=m["first_approver_id"],
            reason=m["reason"],
            level=m["level"],
            risk=None if m["risk"] is None else Assessment.from_json(m["risk"]),
        )


class DocumentRepository:
    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self._s = session
        self._cipher = cipher

    def _seal(self, document_id: uuid.UUID, column: str, value: str | None) -> bytes | None:
        if not value:
            return None
        return self._cipher.encrypt_text(
            value, context=f"kyc.documents.{column}:{document_id}".encode()
        )

    def _open(self, document_id: uuid.UUID, column: str, blob: bytes | None) -> str:
        if blob is None:
            return ""
        return self._cipher.decrypt_text(
            blob, context=f"kyc.documents.{column}:{document_id}".encode()
        )

    async def add(
        self,
        doc: DocumentInfo,
        *,
        requirement_key: str,
        identity: bool,
        blob_key: str,
        now: datetime,
    ) -> None:
        await self._s.execute(
            sa.insert(documents).values(
                id=doc.id,
                user_id=doc.user_id,
                kind=doc.kind,
                requirement_key=requirement_key,
                identity=identity,
                content_type=doc.content_type,
                size_bytes=doc.size,
                blob_key=blob_key,
                number_encrypted=self._seal(doc.id, "number", doc.number),
                issued_on_encrypted=self._seal(
                    doc.id, "issued_on", doc.issued_on.isoformat() if doc.issued_on else None
                ),
                expires_on_encrypted=self._seal(
                    doc.id, "expires_on", doc.expires_on.isoformat() if doc.expires_on else None
                ),
                expires=doc.expires_on is not None,
                status=doc.status.value,
                expiring_notified=False,
                uploaded_at=now,
                updated_at=now,
            )
        )

    async def replace_active(self, user_id: uuid.UUID, requirement_key: str, now: datetime) -> int:
        result = await self._s.execute(
            sa.update(documents)
            .where(
                documents.c.user_id == user_id,
                documents.c.requirement_key == requirement_key,
                documents.c.status == Status.ACTIVE.value,
            )
            .values(status=Status.REPLACED.value, updated_at=now)
        )
        return result.rowcount

    async def get(self, document_id: uuid.UUID) -> tuple[DocumentInfo, str, datetime] | None:
        """(document, blob key, upload time)."""
        row = (
            await self._s.execute(sa.select(documents).where(documents.c.id == document_id))
        ).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return self._doc(m), m["blob_key"], m["uploaded_at"]

    async def of_user(
        self,
        user_id: uuid.UUID,
        *,
        active_only: bool = False,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 1000,
    ) -> list[tuple[DocumentInfo, str, datetime]]:
        query = sa.select(documents).where(documents.c.user_id == user_id)
        if active_only:
            query = query.where(documents.c.status == Status.ACTIVE.value)
        if after is not None:
            query = query.where(
                sa.tuple_(documents.c.uploaded_at, documents.c.id) < sa.tuple_(*after)
            )
        query = query.order_by(documents.c.uploaded_at.desc(), documents.c.id.desc()).limit(limit)
        rows = (await self._s.execute(query)).all()
        return [
            (self._doc(r._mapping), r._mapping["requirement_key"], r._mapping["uploaded_at"])
            for r in rows
        ]

    async def expiring_batch(
        self, after: uuid.UUID | None, limit: int
    ) -> list[tuple[DocumentInfo, str, bool]]:
        """Active documents that expire, in id order: (document, requirement key, identity)."""
        query = sa.select(documents).where(
            documents.c.status == Status.ACTIVE.value, documents.c.expires
        )
        if after is not None:
            query = query.where(documents.c.id > after)
        rows = (await self._s.execute(query.order_by(documents.c.id).limit(limit))).all()
        return [
            (self._doc(r._mapping), r._mapping["requirement_key"], r._mapping["identity"])
            for r in rows
        ]

    async def lock(self, document_id: uuid.UUID) -> tuple[str, bool] | None:
        """Lock the row; (status, expiring notice sent)."""
        row = (
            await self._s.execute(
                sa.select(documents.c.status, documents.c.expiring_notified)
                .where(documents.c.id == document_id)
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def mark(
        self,
        document_id: uuid.UUID,
        now: datetime,
        *,
        status: Status | None = None,
        notified: bool = False,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = status.value
        if notified:
            values["expiring_notified"] = True
        await self._s.execute(
            sa.update(documents).where(documents.c.id == document_id).values(values)
        )

    def _doc(self, m: sa.RowMapping) -> DocumentInfo:
        issued = self._open(m["id"], "issued_on", m["issued_on_encrypted"])
        expires = self._open(m["id"], "expires_on", m["expires_on_encrypted"])
        return DocumentInfo(
            id=m["id"],
            user_id=m["user_id"],
            kind=m["kind"],
            content_type=m["content_type"],
            size=m["size_bytes"],
            status=Status(m["status"]),
            number=self._open(m["id"], "number", m["number_encrypted"]),
            issued_on=date.fromisoformat(issued) if issued else None,
            expires_on=date.fromisoformat(expires) if expires else None,
            expiring_notified=m["expiring_notified"],
        )


class HitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add_new(self, hits: Iterable[Hit]) -> list[Hit]:
        """Insert the hits not raised before for the same client and entry; the new ones."""
        batch = list(hits)
        if not batch:
            return []
        inserted = set(
            await self._s.scalars(
                pg_insert(screening_hits)
                .values(
                    [
                        {
                            "id": hit.id,
                            "user_id": hit.user_id,
                            "application_id": hit.application_id,
                            "list_source": hit.list_source,
                            "list_entry_id": hit.list_entry_id,
                            "entry_name": hit.entry_name,
                            "topics": list(hit.topics),
                            "score": hit.score,
                            "status": hit.status,
                            "resolution_reason": "",
                            "created_at": hit.created_at,
                        }
                        for hit in batch
                    ]
                )
                .on_conflict_do_nothing()
                .returning(screening_hits.c.id)
            )
        )
        return [hit for hit in batch if hit.id in inserted]

    async def get(self, hit_id: uuid.UUID, *, lock: bool = False) -> Hit | None:
        query = sa.select(screening_hits).where(screening_hits.c.id == hit_id)
        if lock:
            query = query.with_for_update()
        row = (await self._s.execute(query)).one_or_none()
        return None if row is None else _hit(row._mapping)

    async def of_user(self, user_id: uuid.UUID) -> list[Hit]:
        rows = await self._s.execute(
            sa.select(screening_hits)
            .where(screening_hits.c.user_id == user_id)
            .order_by(screening_hits.c.created_at, screening_hits.c.id)
        )
        return [_hit(r._mapping) for r in rows]

    async def resolve(
        self, hit_id: uuid.UUID, status: str, actor: str, reason: str, now: datetime
    ) -> None:
        await self._s.execute(
            sa.update(screening_hits)
            .where(screening_hits.c.id == hit_id)
            .values(status=status, resolved_by=actor, resolution_reason=reason, resolved_at=now)
        )

    async def count_open(self) -> int:
        return int(
            await self._s.scalar(
                sa.select(sa.func.count()).where(screening_hits.c.status == "open")
            )
            or 0
        )


def _hit(m: sa.RowMapping) -> Hit:
    return Hit(
        id=m["id"],
        user_id=m["user_id"],
        application_id=m["application_id"],
        list_source=m["list_source"],
        list_entry_id=m["list_entry_id"],
        entry_name=m["entry_name"],
        topics=tuple(m["topics"]),
        score=m["score"],
        status=m["status"],
        resolved_by=m["resolved_by"],
        resolution_reason=m["resolution_reason"],
        created_at=m["created_at"],
    )


# "PWKYCLST" as a 64-bit advisory lock key.
LISTS_LOCK_KEY = 0x50574B59434C5354


class ListRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def lock(self) -> None:
        """Serialise list reloads (several replicas may start at once)."""
        await self._s.execute(sa.select(sa.func.pg_advisory_xact_lock(LISTS_LOCK_KEY)))

    async def digests(self) -> dict[str, str]:
        rows = await self._s.execute(sa.select(list_loads.c.source, list_loads.c.digest))
        return {source: digest for source, digest in rows}

    async def replace(
        self, source: str, entries: Sequence[ListEntry], digest: str, now: datetime
    ) -> None:
        await self._s.execute(sa.delete(list_entries).where(list_entries.c.source == source))
        rows = [
            {
                "source": source,
                "entry_id": e.entry_id,
                "schema": e.schema,
                "name": e.name,
                "aliases": list(e.aliases),
                "birth_dates": list(e.birth_dates),
                "countries": list(e.countries),
                "topics": list(e.topics),
            }
            for e in entries
        ]
        for start in range(0, len(rows), 5000):
            await self._s.execute(
                pg_insert(list_entries).on_conflict_do_nothing(), rows[start : start + 5000]
            )
        load_id = uuid.uuid4()
        await self._s.execute(
            pg_insert(list_loads)
            .values(source=source, entries=len(rows), digest=digest, load_id=load_id, loaded_at=now)
            .on_conflict_do_update(
                index_elements=[list_loads.c.source],
                set_={"entries": len(rows), "digest": digest, "load_id": load_id, "loaded_at": now},
            )
        )

    async def stamp(self) -> str | None:
        """Identifies the loaded lists; the in-memory index is rebuilt when this moves."""
        return await self._s.scalar(
            sa.select(
                sa.func.string_agg(
                    sa.cast(list_loads.c.load_id, sa.Text),
                    sa.literal_column("','").op("ORDER BY")(list_loads.c.source),
                )
            )
        )

    async def all_entries(self) -> list[ListEntry]:
        rows = await self._s.execute(
            sa.select(list_entries).order_by(list_entries.c.source, list_entries.c.entry_id)
        )
        return [
            ListEntry(
                source=m["source"],
                entry_id=m["entry_id"],
                name=m["name"],
                aliases=tuple(m["aliases"]),
                birth_dates=tuple(m["birth_dates"]),
                countries=tuple(m["countries"]),
                topics=tuple(m["topics"]),
                schema=m["schema"],
            )
            for m in (r._mapping for r in rows)
        ]
