"""Migrations: replicas starting together apply each revision once; re-running is a no-op."""

from __future__ import annotations

import asyncio

import asyncpg

from pipworks_platform.db import libpq_dsn
from pipworks_platform.db.migrations import current_revisions, upgrade_to_head
from tests.platform.sample.service import MIGRATIONS


async def test_concurrent_start_ups_migrate_once(database_url):
    await asyncio.gather(
        *(upgrade_to_head(database_url, MIGRATIONS, service="identity") for _ in range(4))
    )
    assert await current_revisions(database_url) == {"platform_0002", "notes_0001"}
    await upgrade_to_head(database_url, MIGRATIONS, service="identity")
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename IN "
            "('outbox_events', 'inbox_events', 'audit_log', 'notes', 'applied_events')"
        )
    finally:
        await conn.close()
    assert count == 5


async def test_a_fresh_database_has_no_revision(database_url):
    assert await current_revisions(database_url) == set()
