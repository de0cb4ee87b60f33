"""Alembic migrations, applied at start-up (and by the Helm pre-upgrade hook job).

Replicas starting together serialise on a transaction-scoped advisory lock, so exactly
one applies pending revisions and the others find the schema already at head.

Where a separate job owns migrations (``PIPWORKS_MIGRATE_ON_START=false``, as the Helm
chart sets), a starting service only checks with :func:`pending_revisions` that the
database has every revision its code knows, and waits for the job otherwise. A database
ahead of the code (revisions the code does not know, during a rollback) is accepted:
migrations are written expand-then-contract, so the previous release runs on the next
schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
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


class SchemaBehind(Exception):
    """The database lacks revisions the code needs; the migration job has not run yet."""

    def __init__(self, service: str, pending: list[str]) -> None:
        self.service = service
        self.pending = pending
        super().__init__(
            f"the {service} database is not at head: {len(pending)} revision(s) pending "
            f"({', '.join(pending)}); run `pipworks migrate {service}`"
        )


async def pending_revisions(database_url: str, service_versions: Path) -> list[str]:
    """Revisions of the code not yet applied to the database, oldest first.

    Empty when the database is at head, or ahead of the code (it holds a revision this
    code does not know: a newer release migrated it).
    """
    applied = await current_revisions(database_url)
    return unapplied(alembic_config(service_versions), applied)


def unapplied(config: Config, applied: set[str]) -> list[str]:
    script = ScriptDirectory.from_config(config)
    covered: set[str] = set()
    for revision in applied:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            return []  # migrated by a newer release, which is a superset of this code's
        covered.update(r.revision for r in script.iterate_revisions(revision, "base"))
    ordered = reversed(list(script.walk_revisions("base", "heads")))
    return [r.revision for r in ordered if r.revision not in covered]


async def check_at_head(database_url: str, service_versions: Path, *, service: str) -> None:
    """Raise :class:`SchemaBehind` unless every revision of the code is applied."""
    pending = await pending_revisions(database_url, service_versions)
    if pending:
        raise SchemaBehind(service, pending)
