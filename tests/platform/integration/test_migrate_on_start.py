"""With ``PIPWORKS_MIGRATE_ON_START=false`` (the Helm chart's setting) a service never
migrates: it waits for the migration job to bring its database to head, serves once it
has, and exits naming the pending revisions when the job does not come in time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from pipworks_devstack.testing import free_port
from pipworks_platform.db.migrations import (
    SchemaBehind,
    alembic_config,
    current_revisions,
    pending_revisions,
    unapplied,
    upgrade_to_head,
)
from pipworks_platform.runtime import (
    Components,
    Infrastructure,
    ServiceDefinition,
    ServiceProcess,
)
from pipworks_platform.settings import ServiceSettings
from tests.helpers import eventually, health_status
from tests.platform.conftest import REPO_ROOT
from tests.platform.sample.service import DEFINITION, MIGRATIONS
from tests.platform.sample.service import build as sample_build

HEADS = {"platform_0002", "notes_0001"}


def _settings(database_url: str, **overrides: object) -> ServiceSettings:
    return ServiceSettings(
        database_url=database_url,
        grpc_address="127.0.0.1:0",
        metrics_port=0,
        migrate_on_start=False,
        **overrides,
    )


def _definition() -> ServiceDefinition:
    # The sample service without NATS: only the database gates its start-up here.
    def build(infra: Infrastructure) -> Components:
        return Components(api=sample_build(infra).api)

    return replace(DEFINITION, build=build, uses_nats=False, publishes_events=False)


def test_the_default_still_migrates_at_start_up():
    assert ServiceSettings().migrate_on_start is True
    env = {"PIPWORKS_MIGRATE_ON_START": "false", "PIPWORKS_MIGRATION_WAIT_SECONDS": "42"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = ServiceSettings.from_env()
    assert settings.migrate_on_start is False
    assert settings.migration_wait_seconds == 42


def test_pending_revisions_are_what_the_database_lacks_and_a_newer_database_passes():
    config = alembic_config(MIGRATIONS)
    assert set(unapplied(config, set())) == {"platform_0001", "platform_0002", "notes_0001"}
    assert set(unapplied(config, {"platform_0001", "notes_0001"})) == {"platform_0002"}
    assert unapplied(config, HEADS) == []
    # A revision this code does not know: a newer release migrated (rollback case).
    assert unapplied(config, {"platform_0003", "notes_0001"}) == []


async def test_an_unmigrated_database_is_refused_and_left_untouched(database_url):
    process = ServiceProcess(_definition(), _settings(database_url, migration_wait_seconds=0))
    try:
        with pytest.raises(SchemaBehind) as refused:
            await process.start()
    finally:
        await process.stop()
    assert set(refused.value.pending) == {"platform_0001", "platform_0002", "notes_0001"}
    assert "pipworks migrate identity" in str(refused.value)
    assert await current_revisions(database_url) == set()
    assert process.port is None


async def test_start_up_waits_for_the_migration_job_then_serves(database_url):
    process = ServiceProcess(_definition(), _settings(database_url, migration_wait_seconds=60))
    starting = asyncio.ensure_future(process.start())
    try:
        await asyncio.sleep(0.5)
        assert not starting.done()  # waiting, and not migrating itself
        assert await current_revisions(database_url) == set()
        await upgrade_to_head(database_url, MIGRATIONS, service="identity")  # the job
        assert await asyncio.wait_for(starting, 30) is True
        assert process.port is not None

        async def serving() -> str:
            return await asyncio.to_thread(health_status, process.port, "")

        await eventually(serving, until=lambda status: status == "SERVING")
    finally:
        if not starting.done():
            starting.cancel()
        await process.stop()
    assert await pending_revisions(database_url, MIGRATIONS) == []


def test_the_process_exits_naming_the_pending_revisions(database_url):
    env = {
        **os.environ,
        "PIPWORKS_DATABASE_URL": database_url,
        "PIPWORKS_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
        "PIPWORKS_METRICS_PORT": "0",
        "PIPWORKS_NATS_URL": "nats://127.0.0.1:1",
        "PIPWORKS_MIGRATE_ON_START": "false",
        "PIPWORKS_MIGRATION_WAIT_SECONDS": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.platform.sample.service"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "not at head" in result.stderr
    assert "notes_0001" in result.stderr
    assert "pipworks migrate identity" in result.stderr


def test_the_migration_job_needs_only_the_database_url(database_url):
    # The Helm hook Job runs `pipworks migrate <service>` with PIPWORKS_DATABASE_URL alone:
    # identity's own required settings (signing keys) are not asked for.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env |= {"PIPWORKS_DATABASE_URL": database_url, "PIPWORKS_METRICS_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "pipworks_cli", "migrate", "identity"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    revisions = asyncio.run(current_revisions(database_url))
    assert "platform_0002" in revisions
    assert any(r.startswith("identity_") for r in revisions)
