"""Tables the platform keeps in every service database: the outbox, the inbox and the
hash-chained audit log.

Their schema is created by the platform's own alembic branch (``alembic/versions``),
which every service database applies alongside the service's revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("headers", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index(
    "ix_outbox_events_unpublished",
    outbox.c.id,
    postgresql_where=outbox.c.published_at.is_(None),
)
sa.Index("ix_outbox_events_published_at", outbox.c.published_at)

inbox = sa.Table(
    "inbox_events",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("details", pg.JSONB, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False, unique=True),
)
sa.Index("ix_audit_log_subject", audit_log.c.subject, audit_log.c.sequence)
