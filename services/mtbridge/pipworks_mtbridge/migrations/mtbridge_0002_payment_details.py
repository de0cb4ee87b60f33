"""Payment details (method, instrument fingerprint, country) on balance operations.

Revision ID: mtbridge_0002
Revises: mtbridge_0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mtbridge_0002"
down_revision: str | None = "mtbridge_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("balance_operations", sa.Column("payment_method", sa.Text))
    op.add_column("balance_operations", sa.Column("payment_instrument", sa.Text))
    op.add_column("balance_operations", sa.Column("payment_country", sa.Text))


def downgrade() -> None:
    op.drop_column("balance_operations", "payment_country")
    op.drop_column("balance_operations", "payment_instrument")
    op.drop_column("balance_operations", "payment_method")
