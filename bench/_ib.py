"""The ib service's side shared by the benches: a partner network with a commission plan,
written straight into the service's own schema (after its migrations), and the service
process over that database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench._services import ServiceSpec
from pipworks_ib.main import BRIDGE_DURABLE, DEFINITION
from pipworks_platform.db.migrations import upgrade_to_head

__all__ = ["BRIDGE_DURABLE", "DEPTH", "ib_spec", "migrate", "plan_terms", "seed_network"]

DEPTH = 10  # partners per chain
PLAN_ID = "bench"
PLAN_START = datetime(2026, 1, 1, tzinfo=UTC)
LEVEL_PERCENTS = ("30", "15", "10", "10", "8", "7", "6", "5", "5", "4")  # of DEPTH levels


def plan_terms(*, rate: str = "10", min_lifetime_seconds: int = 60) -> dict[str, Any]:
    """One per-lot rule on EURUSD and GBPUSD (``rate`` USD per lot) shared by 10 levels."""
    return {
        "currency": "USD",
        "symbol_groups": [{"name": "FX", "patterns": ["EURUSD", "GBPUSD"]}],
        "symbols": [],
        "rules": [
            {
                "rule_id": "fx-lot",
                "kind": "per_lot",
                "rate": rate,
                "symbol_group": "FX",
                "threshold": "0",
            }
        ],
        "distribution": {
            "levels": [{"percent": p} for p in LEVEL_PERCENTS],
            "beyond": "nothing",
            "cap_per_deal": None,
        },
        "overrides": {},
        "min_lifetime_seconds": min_lifetime_seconds,
        "pay_own_trades": False,
    }


async def migrate(url: str) -> None:
    """The ib service's schema, as its own start-up would migrate it."""
    assert DEFINITION.migrations is not None
    await upgrade_to_head(url, DEFINITION.migrations, service="ib")


async def seed_network(
    conn: asyncpg.Connection,
    clients: Sequence[uuid.UUID],
    *,
    chains: int,
    terms: Mapping[str, Any],
    depth: int = DEPTH,
) -> None:
    """``chains`` chains of ``depth`` partners (each root has the plan of ``terms``), and
    ``clients`` attributed round-robin to the chains' leaves, with COPY."""
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO plans (id, name, revision, created_at) VALUES ($1, 'bench', 1, $2)",
        PLAN_ID,
        now,
    )
    await conn.execute(
        "INSERT INTO plan_versions (plan_id, version, effective_from, currency, terms,"
        " created_at, created_by) VALUES ($1, 1, $2, 'USD', $3::jsonb, $4, 'bench')",
        PLAN_ID,
        PLAN_START,
        json.dumps(terms),
        now,
    )
    partners, tree, leaves = [], [], []
    for _ in range(chains):
        chain: list[uuid.UUID] = []
        for level in range(depth):
            partner = uuid.uuid4()
            parent = chain[-1] if chain else None
            partners.append(
                (partner, uuid.uuid4(), parent, "active", PLAN_ID if level == 0 else None, now)
            )
            tree.append((partner, partner, 0))
            tree += [(ancestor, partner, len(chain) - i) for i, ancestor in enumerate(chain)]
            chain.append(partner)
        leaves.append(chain[-1])
    await conn.copy_records_to_table(
        "partners",
        records=partners,
        columns=["id", "user_id", "parent_id", "status", "plan_id", "created_at"],
    )
    await conn.copy_records_to_table(
        "partner_tree", records=tree, columns=["ancestor_id", "descendant_id", "depth"]
    )
    await conn.copy_records_to_table(
        "attributions",
        records=[(c, leaves[i % len(leaves)], None, "", False, now) for i, c in enumerate(clients)],
        columns=[
            "client_user_id",
            "partner_id",
            "referral_code",
            "campaign",
            "manual",
            "attributed_at",
        ],
    )


def ib_spec(url: str, nats_url: str, batch: int) -> ServiceSpec:
    """``python -m pipworks_ib`` on a database the bench migrated and seeded itself."""
    env = {
        "PIPWORKS_DATABASE_URL": url,
        "PIPWORKS_NATS_URL": nats_url,
        "PIPWORKS_IB_CONSUMER_BATCH_SIZE": str(batch),
        "PIPWORKS_LOG_LEVEL": "warning",
    }
    return ServiceSpec("ib", "pipworks_ib", env, database=False)
