"""Accounts and their openings, balance operations, the deal mirror, sync cursors and
margin-call state.

Revision ID: mtbridge_0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "mtbridge_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("mtbridge",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(28, 8)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("login", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("group_name", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("currency_digits", sa.SmallInteger, nullable=False),
        sa.Column("leverage", sa.Integer, nullable=False),
        sa.Column("trading_enabled", sa.Boolean, nullable=False),
        sa.Column("withdrawals_enabled", sa.Boolean, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("server", "login", name="pk_accounts"),
        sa.CheckConstraint("login > 0", name="ck_accounts_login"),
        sa.CheckConstraint("leverage > 0", name="ck_accounts_leverage"),
        sa.CheckConstraint("currency_digits BETWEEN 0 AND 8", name="ck_accounts_digits"),
    )
    op.create_index("ix_accounts_user", "accounts", ["user_id", "opened_at", "server", "login"])

    op.create_table(
        "account_openings",
        sa.Column("opening_key", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("login", sa.BigInteger),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.CheckConstraint(
            "(completed_at IS NULL) = (login IS NULL)", name="ck_account_openings_completed"
        ),
    )

    op.create_table(
        "balance_operations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("login", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("deal_ticket", sa.BigInteger),
        sa.Column("rejection", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.UniqueConstraint("server", "login", "idempotency_key", name="uq_balance_operations_key"),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'credit', 'ib_payout')",
            name="ck_balance_operations_kind",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'rejected')", name="ck_balance_operations_status"
        ),
        sa.CheckConstraint("amount <> 0", name="ck_balance_operations_amount"),
        sa.CheckConstraint(
            "status <> 'completed' OR deal_ticket IS NOT NULL",
            name="ck_balance_operations_ticket",
        ),
    )
    op.create_index(
        "ix_balance_operations_comment", "balance_operations", ["server", "login", "comment"]
    )

    op.create_table(
        "deals",
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("ticket", sa.BigInteger, nullable=False),
        sa.Column("login", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("action", sa.SmallInteger, nullable=False),
        sa.Column("entry", sa.SmallInteger, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("volume_lots", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("profit", MONEY, nullable=False),
        sa.Column("commission", MONEY, nullable=False),
        sa.Column("swap", MONEY, nullable=False),
        sa.Column("position_id", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("executed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("server", "ticket", name="pk_deals"),
    )
    op.create_index("ix_deals_user", "deals", ["user_id", "executed_at", "server", "ticket"])
    op.create_index("ix_deals_login", "deals", ["server", "login", "executed_at", "ticket"])

    op.create_table(
        "sync_cursors",
        sa.Column("server", sa.Text, primary_key=True),
        sa.Column("synced_until", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    op.create_table(
        "margin_states",
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("login", sa.BigInteger, nullable=False),
        sa.Column("disarmed", pg.ARRAY(MONEY), nullable=False),
        sa.Column("margin_level", MONEY),
        sa.Column("observed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("server", "login", name="pk_margin_states"),
    )


def downgrade() -> None:
    for table in (
        "margin_states",
        "sync_cursors",
        "deals",
        "balance_operations",
        "account_openings",
        "accounts",
    ):
        op.drop_table(table)
