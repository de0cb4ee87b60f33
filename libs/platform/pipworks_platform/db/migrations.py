"""Alembic migrations, applied at start-up (and by the Helm pre-upgrade hook job).

Replicas starting together serialise on a transaction-scoped advisory lock, so exactly
one applies pending revisions and the others find the schema already at head.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from pipworks_platform.db.engine import create_engine

MIGRATION_LOCK_KEY = 0x50574D4947524154  # "PWMIGRAT"


PLATFORM_ALEMBIC = Path(__file__).parent / "alembic"


def alembic_config(service_versions: Path) -> Config:
    """Alembic over two branches: the platform's tables and the service's own revisions."""
    config = Config()
    config.set_main_option("script_location", str(PLATFORM_ALEMBIC))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join([str(PLATFORM_ALEMBIC / "versions"), str(service_versions)]),
    )
    return config


async def upgrade_to_head(database_url: str, service_versions: Path, *, service: str) -> None:
    """Apply every pending revision of the platform and service branches."""
    engine = create_engine(database_url, application_name=f"pipworks-{service}-migrate")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            await conn.run_sync(_upgrade, alembic_config(service_versions))
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def current_revisions(database_url: str) -> set[str]:
    engine = create_engine(database_url, application_name="pipworks-migrate-check")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(sa.text("SELECT to_regclass('alembic_version')"))
            if exists is None:
                return set()
            rows = await conn.scalars(sa.text("SELECT version_num FROM alembic_version"))
            return set(rows)
    finally:
        await engine.dispose()
