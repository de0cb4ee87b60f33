"""Profiles, requirement templates, country risk, applications, documents, screening hits
and the loaded sanctions/PEP lists.

Revision ID: kyc_0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "kyc_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("kyc",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STATES = "'draft','submitted','in_review','approved','rejected','information_requested'"
RATINGS = "'low','medium','high'"


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Uuid, primary_key=True),
        sa.Column("country_code", sa.Text, nullable=False),
        sa.Column("level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("approved_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("antifraud_alerts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("antifraud_restricted", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("country_code ~ '^[A-Z]{2}$|^$'", name="ck_profiles_country"),
        sa.CheckConstraint("level >= 0 AND approved_level >= level", name="ck_profiles_level"),
    )
    op.create_table(
        "templates",
        sa.Column("template_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("client_type", sa.Text, nullable=False),
        sa.Column("country_code", sa.Text, nullable=False),
        sa.Column("definition", pg.JSONB, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("client_type IN ('individual','corporate')", name="ck_tpl_type"),
        sa.CheckConstraint("version >= 1", name="ck_tpl_version"),
    )
    op.create_index("ix_templates_lookup", "templates", ["client_type", "country_code", "version"])
    op.create_table(
        "country_risk",
        sa.Column("country_code", sa.Text, primary_key=True),
        sa.Column("rating", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"rating IN ({RATINGS})", name="ck_country_risk_rating"),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("template_id", sa.Text, nullable=False),
        sa.Column("template_version", sa.Integer, nullable=False),
        sa.Column("client_type", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("answers_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("country_code", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False, server_default=""),
        sa.Column("submissions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("submitted_at", TS),
        sa.Column("reviewer_id", sa.Text),
        sa.Column("first_approver_id", sa.Text),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("risk_rating", sa.Text),
        sa.Column("risk", pg.JSONB),
        sa.Column("provider_reference", sa.Text),
        sa.Column("provider_verdict", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name="ck_applications_state"),
        sa.CheckConstraint(
            f"risk_rating IS NULL OR risk_rating IN ({RATINGS})", name="ck_applications_risk"
        ),
    )
    # At most one application in progress per user.
    op.create_index(
        "uq_applications_open",
        "applications",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("state NOT IN ('approved','rejected')"),
    )
    op.create_index("ix_applications_queue", "applications", ["state", "submitted_at", "id"])
    op.create_index("ix_applications_user", "applications", ["user_id", "created_at"])
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("requirement_key", sa.Text, nullable=False),
        sa.Column("identity", sa.Boolean, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("blob_key", sa.Text, nullable=False, unique=True),
        sa.Column("number_encrypted", sa.LargeBinary),
        sa.Column("issued_on_encrypted", sa.LargeBinary),
        sa.Column("expires_on_encrypted", sa.LargeBinary),
        sa.Column("expires", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("expiring_notified", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg','image/png','application/pdf')",
            name="ck_documents_content_type",
        ),
        sa.CheckConstraint("status IN ('active','replaced','expired')", name="ck_documents_status"),
    )
    op.create_index("ix_documents_user", "documents", ["user_id", "uploaded_at"])
    op.create_index(
        "ix_documents_expiring",
        "documents",
        ["id"],
        postgresql_where=sa.text("status = 'active' AND expires"),
    )
    op.create_table(
        "screening_hits",
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
        sa.Column("resolution_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.CheckConstraint(
            "status IN ('open','cleared','confirmed')", name="ck_screening_hits_status"
        ),
        # A list entry is raised once per client: a cleared false positive stays cleared.
        sa.UniqueConstraint("user_id", "list_source", "list_entry_id", name="uq_hits_entry"),
    )
    op.create_index(
        "ix_screening_hits_open",
        "screening_hits",
        ["user_id"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "list_entries",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("aliases", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("birth_dates", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("countries", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("topics", pg.ARRAY(sa.Text), nullable=False),
    )
    op.create_table(
        "list_loads",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("load_id", sa.Uuid, nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "list_loads",
        "list_entries",
        "screening_hits",
        "documents",
        "applications",
        "country_risk",
        "templates",
        "profiles",
    ):
        op.drop_table(table)
