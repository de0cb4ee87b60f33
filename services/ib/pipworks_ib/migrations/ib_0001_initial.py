"""Partners and their closure-table tree, referral links and clicks, attributions,
trading logins, positions and deals seen, commission plans and versions, anti-fraud
holds, the append-only commission ledger, statements and their items.

Revision ID: ib_0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ib_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("ib",)
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE plans (
    id text PRIMARY KEY,
    name text NOT NULL,
    revision integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL
);
CREATE TABLE plan_versions (
    plan_id text NOT NULL REFERENCES plans (id),
    version integer NOT NULL,
    effective_from timestamptz NOT NULL,
    currency text NOT NULL,
    terms jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    PRIMARY KEY (plan_id, version),
    UNIQUE (plan_id, effective_from)
);
CREATE TABLE partners (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL UNIQUE,
    parent_id uuid REFERENCES partners (id),
    status text NOT NULL CHECK (status IN ('active', 'pending')),
    plan_id text REFERENCES plans (id),
    created_at timestamptz NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX ix_partners_parent ON partners (parent_id);
-- Closure table: one row per (ancestor, descendant) pair, self pairs at depth 0.
CREATE TABLE partner_tree (
    ancestor_id uuid NOT NULL REFERENCES partners (id),
    descendant_id uuid NOT NULL REFERENCES partners (id),
    depth integer NOT NULL CHECK (depth >= 0),
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX ix_partner_tree_descendant ON partner_tree (descendant_id, depth);
CREATE TABLE referral_links (
    code text PRIMARY KEY,
    partner_id uuid NOT NULL REFERENCES partners (id),
    campaign text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX ix_referral_links_partner ON referral_links (partner_id, created_at);
CREATE TABLE link_clicks (
    code text NOT NULL REFERENCES referral_links (code),
    day date NOT NULL,
    clicks bigint NOT NULL,
    PRIMARY KEY (code, day)
);
CREATE TABLE attributions (
    client_user_id uuid PRIMARY KEY,
    partner_id uuid NOT NULL REFERENCES partners (id),
    referral_code text,
    campaign text NOT NULL DEFAULT '',
    manual boolean NOT NULL,
    attributed_at timestamptz NOT NULL
);
CREATE INDEX ix_attributions_partner ON attributions (partner_id, attributed_at, client_user_id);
CREATE INDEX ix_attributions_code ON attributions (referral_code);
CREATE TABLE trading_logins (
    server text NOT NULL,
    login bigint NOT NULL,
    user_id uuid NOT NULL,
    currency text NOT NULL,
    opened_at timestamptz NOT NULL,
    PRIMARY KEY (server, login)
);
CREATE INDEX ix_trading_logins_user ON trading_logins (user_id);
CREATE TABLE positions (
    server text NOT NULL,
    position_id bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    volume numeric(28, 8) NOT NULL,
    commission numeric(28, 8) NOT NULL,
    PRIMARY KEY (server, position_id)
);
CREATE TABLE client_deals (
    server text NOT NULL,
    ticket bigint NOT NULL,
    client_user_id uuid NOT NULL,
    symbol text NOT NULL,
    entry smallint NOT NULL,
    volume numeric(28, 8) NOT NULL,
    result numeric(28, 8) NOT NULL,
    currency text NOT NULL,
    executed_at timestamptz NOT NULL,
    PRIMARY KEY (server, ticket)
);
CREATE INDEX ix_client_deals_client ON client_deals (client_user_id, executed_at);
CREATE TABLE client_deposits (
    server text NOT NULL,
    ticket bigint NOT NULL,
    client_user_id uuid NOT NULL,
    amount numeric(28, 8) NOT NULL,
    currency text NOT NULL,
    executed_at timestamptz NOT NULL,
    PRIMARY KEY (server, ticket)
);
CREATE INDEX ix_client_deposits_client ON client_deposits (client_user_id);
CREATE TABLE holds (
    id uuid PRIMARY KEY,
    client_user_id uuid NOT NULL,
    case_id text NOT NULL,
    restriction_id text NOT NULL,
    opened_at timestamptz NOT NULL,
    lifted_at timestamptz,
    resolution text CHECK (resolution IN ('released', 'forfeited')),
    resolved_at timestamptz
);
CREATE INDEX ix_holds_client ON holds (client_user_id, opened_at);
-- The ledger is append-only: corrections are reversal rows.
CREATE TABLE ledger (
    id uuid PRIMARY KEY,
    source_key text NOT NULL,
    partner_id uuid NOT NULL,
    rule_id text NOT NULL,
    entry_kind text NOT NULL CHECK (entry_kind IN ('accrual', 'reversal')),
    level integer NOT NULL CHECK (level >= 1),
    client_user_id uuid NOT NULL,
    server text NOT NULL,
    deal bigint NOT NULL,
    symbol text NOT NULL,
    rule_kind text NOT NULL,
    plan_id text NOT NULL,
    plan_version integer NOT NULL,
    base numeric(28, 10) NOT NULL,
    rate numeric(28, 10) NOT NULL,
    amount numeric(28, 8) NOT NULL,
    currency text NOT NULL,
    hold_id uuid REFERENCES holds (id),
    reverses uuid REFERENCES ledger (id),
    explanation jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT uq_ledger_source UNIQUE (source_key, partner_id, rule_id)
);
CREATE INDEX ix_ledger_partner ON ledger (partner_id, occurred_at, id);
CREATE INDEX ix_ledger_hold ON ledger (hold_id) WHERE hold_id IS NOT NULL;
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the commission ledger is append-only: write a reversal row'; END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
-- What every row of one source (a deal, a CPA, a settlement) shares: the chain, the plan,
-- each rule's numbers. A row's own explanation holds its level's share.
CREATE TABLE ledger_facts (
    source_key text PRIMARY KEY,
    facts jsonb NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE TABLE statements (
    id uuid PRIMARY KEY,
    partner_id uuid NOT NULL REFERENCES partners (id),
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    currency text NOT NULL,
    total numeric(28, 8) NOT NULL,
    entries bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'approved', 'paid')),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    payout_id uuid UNIQUE,
    approval_key text,
    server text,
    login bigint,
    approved_at timestamptz,
    approved_by text,
    paid_at timestamptz,
    CHECK (period_start < period_end),
    UNIQUE (partner_id, period_start, period_end, currency)
);
CREATE INDEX ix_statements_partner ON statements (partner_id, created_at);
CREATE TABLE statement_items (
    ledger_id uuid PRIMARY KEY REFERENCES ledger (id),
    statement_id uuid NOT NULL REFERENCES statements (id)
);
CREATE INDEX ix_statement_items_statement ON statement_items (statement_id);
CREATE TABLE revenue_settlements (
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    settled_at timestamptz NOT NULL,
    entries bigint NOT NULL,
    PRIMARY KEY (period_start, period_end)
);
"""

TABLES = (
    "revenue_settlements",
    "statement_items",
    "statements",
    "ledger_facts",
    "ledger",
    "holds",
    "client_deposits",
    "client_deals",
    "positions",
    "trading_logins",
    "attributions",
    "link_clicks",
    "referral_links",
    "partner_tree",
    "partners",
    "plan_versions",
    "plans",
)


def upgrade() -> None:
    for statement in UPGRADE.split(";\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION ledger_append_only()")
