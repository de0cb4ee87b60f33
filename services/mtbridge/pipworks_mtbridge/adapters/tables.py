"""The bridge's database schema as SQLAlchemy Core tables (created by ``migrations/``).

Money, prices and volumes are NUMERIC, never floating point. Trading passwords are
never stored: they are returned once by OpenAccount.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(28, 8)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("server", sa.Text, primary_key=True),
    sa.Column("login", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("currency_digits", sa.SmallInteger, nullable=False),
    sa.Column("leverage", sa.Integer, nullable=False),
    sa.Column("trading_enabled", sa.Boolean, nullable=False),
    sa.Column("withdrawals_enabled", sa.Boolean, nullable=False),
    sa.Column("opened_at", TS, nullable=False),
)

account_openings = sa.Table(
    "account_openings",
    metadata,
    sa.Column("opening_key", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("server", sa.Text, nullable=False),
    sa.Column("login", sa.BigInteger),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("completed_at", TS),
)

balance_operations = sa.Table(
    "balance_operations",
    metadata,
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
    sa.Column("payment_method", sa.Text),
    sa.Column("payment_instrument", sa.Text),
    sa.Column("payment_country", sa.Text),
)

deals = sa.Table(
    "deals",
    metadata,
    sa.Column("server", sa.Text, primary_key=True),
    sa.Column("ticket", sa.BigInteger, primary_key=True),
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
)

sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("server", sa.Text, primary_key=True),
    sa.Column("synced_until", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

margin_states = sa.Table(
    "margin_states",
    metadata,
    sa.Column("server", sa.Text, primary_key=True),
    sa.Column("login", sa.BigInteger, primary_key=True),
    sa.Column("disarmed", pg.ARRAY(MONEY), nullable=False),
    sa.Column("margin_level", MONEY),
    sa.Column("observed_at", TS, nullable=False),
)
