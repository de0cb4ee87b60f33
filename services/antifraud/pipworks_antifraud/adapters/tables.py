"""The anti-fraud service's tables (the schema itself is created by the migrations)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
SCORE = sa.Numeric(12, 2)

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
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
)

client_state = sa.Table(
    "client_state",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("state", pg.JSONB, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

shared_keys = sa.Table(
    "shared_keys",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("first_seen", TS, nullable=False),
)

evaluated_events = sa.Table(
    "evaluated_events",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("document", pg.JSONB, nullable=False),
    sa.Column("score", SCORE, nullable=False),
    sa.Column("shadow_score", SCORE, nullable=False),
    sa.Column("hits", pg.JSONB, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
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
    sa.Column("case_id", sa.Uuid, nullable=True),
    sa.Column("values", pg.JSONB, nullable=False),
    sa.Column("raised_at", TS, nullable=False),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("assignee", sa.Text, nullable=False),
    sa.Column("opened_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("resolved_at", TS, nullable=True),
    sa.Column("resolution_note", sa.Text, nullable=False),
)

case_comments = sa.Table(
    "case_comments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("case_id", sa.Uuid, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

restrictions = sa.Table(
    "restrictions",
    metadata,
    sa.Column("restriction_id", sa.Uuid, primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("trading", sa.Boolean, nullable=False),
    sa.Column("withdrawals", sa.Boolean, nullable=False),
    sa.Column("login", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("case_id", sa.Uuid, nullable=True),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=True),
    sa.Column("lifted_at", TS, nullable=True),
    sa.Column("lifted_by", sa.Text, nullable=False),
    sa.Column("lift_reason", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=True, unique=True),
)
