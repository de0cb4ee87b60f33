"""Users, sessions and refresh-token families, one-time tokens, MFA, service accounts,
the per-address throttle.

Revision ID: identity_0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "identity_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("identity",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ROLES = "ARRAY['client','ib','support','compliance','dealer','admin']::text[]"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("roles", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("country_code", sa.Text),
        sa.Column("phone_encrypted", sa.LargeBinary),
        sa.Column("referral_code", sa.Text),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
        sa.Column("email_verified_at", TS),
        sa.Column("totp_secret_encrypted", sa.LargeBinary),
        sa.Column("totp_pending_secret_encrypted", sa.LargeBinary),
        sa.Column("totp_enabled_at", TS),
        sa.Column("totp_last_used_step", sa.BigInteger),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lockouts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TS),
        sa.Column("kyc_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("kind IN ('client', 'staff')", name="ck_users_kind"),
        sa.CheckConstraint(
            f"cardinality(roles) > 0 AND roles <@ {ROLES}", name="ck_users_roles_known"
        ),
        sa.CheckConstraint("country_code ~ '^[A-Z]{2}$'", name="ck_users_country_code"),
        sa.CheckConstraint("failed_attempts >= 0 AND lockouts >= 0", name="ck_users_counters"),
        sa.CheckConstraint("kyc_level >= 0", name="ck_users_kyc_level"),
    )
    op.create_index(
        "ix_users_admins", "users", ["id"], postgresql_where=sa.text("'admin' = ANY(roles)")
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("aal", sa.SmallInteger, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ip_address", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("revoked_at", TS),
        sa.Column("revoked_reason", sa.Text),
        sa.CheckConstraint("aal IN (1, 2)", name="ck_sessions_aal"),
    )
    op.create_index("ix_sessions_user_created", "sessions", ["user_id", "created_at", "id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "session_id",
            sa.Uuid,
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("spent_at", TS),
        sa.UniqueConstraint("session_id", "generation", name="uq_refresh_tokens_generation"),
    )

    op.create_table(
        "mfa_challenges",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Column("ip_address", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
    )
    op.create_index("ix_mfa_challenges_user", "mfa_challenges", ["user_id"])

    op.create_table(
        "one_time_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.CheckConstraint(
            "purpose IN ('email_verification', 'password_reset')",
            name="ck_one_time_tokens_purpose",
        ),
    )
    op.create_index("ix_one_time_tokens_user_purpose", "one_time_tokens", ["user_id", "purpose"])

    op.create_table(
        "recovery_codes",
        sa.Column(
            "user_id",
            sa.Uuid,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code_hash", sa.LargeBinary, primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("used_at", TS),
    )

    op.create_table(
        "service_accounts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("roles", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.UniqueConstraint("client_id", name="uq_service_accounts_client_id"),
        sa.UniqueConstraint("name", name="uq_service_accounts_name"),
        sa.CheckConstraint(
            f"cardinality(roles) > 0 AND roles <@ {ROLES}", name="ck_service_accounts_roles"
        ),
    )

    op.create_table(
        "ip_throttle",
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_ip_throttle_updated_at", "ip_throttle", ["updated_at"])


def downgrade() -> None:
    op.drop_table("ip_throttle")
    op.drop_table("service_accounts")
    op.drop_table("recovery_codes")
    op.drop_table("one_time_tokens")
    op.drop_table("mfa_challenges")
    op.drop_table("refresh_tokens")
    op.drop_table("sessions")
    op.drop_table("users")
