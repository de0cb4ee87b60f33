"""The kyc database schema as SQLAlchemy Core tables (created by ``migrations/``).

Personal data never sits here in clear: application answers (names, dates of birth,
income), document numbers, issue and expiry dates are AES-256-GCM blobs bound to their
row; document files live encrypted in the blob store.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("country_code", sa.Text, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("approved_level", sa.Integer, nullable=False),
    sa.Column("antifraud_alerts", sa.Integer, nullable=False),
    sa.Column("antifraud_restricted", sa.Boolean, nullable=False),
    sa.Column("registered_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

templates = sa.Table(
    "templates",
    metadata,
    sa.Column("template_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("client_type", sa.Text, nullable=False),
    sa.Column("country_code", sa.Text, nullable=False),
    sa.Column("definition", pg.JSONB, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

country_risk = sa.Table(
    "country_risk",
    metadata,
    sa.Column("country_code", sa.Text, primary_key=True),
    sa.Column("rating", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("template_id", sa.Text, nullable=False),
    sa.Column("template_version", sa.Integer, nullable=False),
    sa.Column("client_type", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("answers_encrypted", sa.LargeBinary, nullable=False),
    sa.Column("country_code", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("submissions", sa.Integer, nullable=False),
    sa.Column("submitted_at", TS),
    sa.Column("reviewer_id", sa.Text),
    sa.Column("first_approver_id", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("risk_rating", sa.Text),
    sa.Column("risk", pg.JSONB),
    sa.Column("provider_reference", sa.Text),
    sa.Column("provider_verdict", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("requirement_key", sa.Text, nullable=False),
    sa.Column("identity", sa.Boolean, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("blob_key", sa.Text, nullable=False),
    sa.Column("number_encrypted", sa.LargeBinary),
    sa.Column("issued_on_encrypted", sa.LargeBinary),
    sa.Column("expires_on_encrypted", sa.LargeBinary),
    sa.Column("expires", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("expiring_notified", sa.Boolean, nullable=False),
    sa.Column("uploaded_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

screening_hits = sa.Table(
    "screening_hits",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("application_id", sa.Uuid),
    sa.Column("list_source", sa.Text, nullable=False),
    sa.Column("list_entry_id", sa.Text, nullable=False),
    sa.Column("entry_name", sa.Text, nullable=False),
    sa.Column("topics", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("score", sa.Numeric(5, 1), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolution_reason", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("resolved_at", TS),
)

list_entries = sa.Table(
    "list_entries",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("aliases", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("birth_dates", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("countries", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("topics", pg.ARRAY(sa.Text), nullable=False),
)

list_loads = sa.Table(
    "list_loads",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("load_id", sa.Uuid, nullable=False),
    sa.Column("loaded_at", TS, nullable=False),
)
