"""The body of every service's ``migrations/env.py``.

At start-up the runtime hands alembic an open connection (inside the migration lock);
run from the ``alembic`` command line instead, it connects to PIPWORKS_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from pipworks_platform.db.engine import asyncpg_url, create_engine


def run_env(target_metadata: sa.MetaData | None = None) -> None:
    if context.is_offline_mode():
        context.configure(
            url=asyncpg_url(_url_from_environment()),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_online(connection, target_metadata)
        return
    asyncio.run(_run_with_own_engine(target_metadata))


def _run_online(connection: Connection, target_metadata: sa.MetaData | None) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(target_metadata: sa.MetaData | None) -> None:
    engine = create_engine(_url_from_environment(), application_name="pipworks-alembic")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_online, target_metadata)
    finally:
        await engine.dispose()


def _url_from_environment() -> str:
    url = os.environ.get("PIPWORKS_DATABASE_URL")
    if not url:
        raise SystemExit("PIPWORKS_DATABASE_URL: is required to run migrations")
    return url
