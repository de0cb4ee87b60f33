"""Login restrictions placed by anti-fraud.

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0002"
down_revision: str | None = "identity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_restrictions",
        sa.Column("restriction_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("restricted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_restrictions_user_id", "login_restrictions", ["user_id"])


def downgrade() -> None:
    op.drop_table("login_restrictions")
