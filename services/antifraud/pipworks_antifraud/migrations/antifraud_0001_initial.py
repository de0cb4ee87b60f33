"""Rules, client state, shared-by indexes, evaluated events, alerts, cases and restrictions.

Revision ID: antifraud_0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "antifraud_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("antifraud",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SCORE = sa.Numeric(12, 2)


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("event_kinds", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("condition", sa.Text, nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("actions", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("restriction_hours", sa.Integer, nullable=False),
        sa.Column("cooldown_seconds", sa.Integer, nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "version", name="pk_rules"),
        sa.CheckConstraint("version > 0", name="ck_rules_version"),
        sa.CheckConstraint("mode IN ('LIVE', 'SHADOW', 'DISABLED')", name="ck_rules_mode"),
    )
    op.create_index(
        "ux_rules_current",
        "rules",
        ["rule_id"],
        unique=True,
        postgresql_where=sa.text("is_current"),
    )

    op.create_table(
        "client_state",
        sa.Column("user_id", sa.Uuid, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("state", pg.JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    op.create_table(
        "shared_keys",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "user_id", name="pk_shared_keys"),
    )

    op.create_table(
        "evaluated_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("document", pg.JSONB, nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("shadow_score", SCORE, nullable=False),
        sa.Column("hits", pg.JSONB, nullable=False),
    )
    op.create_index("ix_evaluated_events_time", "evaluated_events", ["occurred_at"])
    op.create_index(
        "ix_evaluated_events_scored",
        "evaluated_events",
        ["user_id", "occurred_at"],
        postgresql_where=sa.text("score > 0 OR shadow_score > 0"),
    )

    op.create_table(
        "cases",
        sa.Column("case_id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolution_note", sa.Text, nullable=False),
    )
    op.create_index(
        "ux_cases_active_per_client",
        "cases",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('OPEN', 'INVESTIGATING', 'ESCALATED')"),
    )

    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("rule_version", sa.Integer, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source_event_id", sa.Uuid, nullable=False),
        sa.Column("source_subject", sa.Text, nullable=False),
        sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.case_id", name="fk_alerts_case")),
        sa.Column("values", pg.JSONB, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
    )
    op.create_index("ix_alerts_user", "alerts", ["user_id", "seq"])
    op.create_index("ix_alerts_case", "alerts", ["case_id", "seq"])

    op.create_table(
        "case_comments",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "case_id",
            sa.Uuid,
            sa.ForeignKey("cases.case_id", name="fk_comments_case"),
            nullable=False,
        ),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_case_comments_case", "case_comments", ["case_id", "id"])

    op.create_table(
        "restrictions",
        sa.Column("restriction_id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("trading", sa.Boolean, nullable=False),
        sa.Column("withdrawals", sa.Boolean, nullable=False),
        sa.Column("login", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("case_id", sa.Uuid),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("lifted_at", TS),
        sa.Column("lifted_by", sa.Text, nullable=False),
        sa.Column("lift_reason", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.CheckConstraint("trading OR withdrawals OR login", name="ck_restrictions_blocks"),
    )
    op.create_index("ix_restrictions_user", "restrictions", ["user_id", "seq"])
    op.create_index(
        "ix_restrictions_expiring",
        "restrictions",
        ["expires_at"],
        postgresql_where=sa.text("lifted_at IS NULL AND expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    for table in (
        "restrictions",
        "case_comments",
        "alerts",
        "cases",
        "evaluated_events",
        "shared_keys",
        "client_state",
        "rules",
    ):
        op.drop_table(table)
