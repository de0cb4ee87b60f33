"""EmbeddedPostgres against the real server: start, roles and databases, restarts, crashes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pipworks_devstack import EmbeddedPostgres, PostgresError
from pipworks_devstack.testing import accepts_connections


def _plain(url: str) -> str:
    """asyncpg wants the libpq scheme, not SQLAlchemy's driver-qualified one."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _fetch(url: str, query: str) -> object:
    connection = await asyncpg.connect(_plain(url))
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server of its own, for tests that stop or kill it."""
    server = EmbeddedPostgres(tmp_path / "pg" / "data", port=0)
    server.start()
    yield server
    server.stop()


async def test_session_server_listens_on_loopback_only(postgres: EmbeddedPostgres) -> None:
    assert postgres.is_running
    assert postgres.host == "127.0.0.1"
    assert accepts_connections(postgres.port)
    assert await _fetch(postgres.admin_dsn, "SELECT 1") == 1
    assert await _fetch(postgres.admin_dsn, "SHOW listen_addresses") == "127.0.0.1"
    assert int(await _fetch(postgres.admin_dsn, "SHOW max_connections")) >= 200
    assert await _fetch(
        postgres.admin_dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'"
    )


def test_server_never_runs_as_root(postgres: EmbeddedPostgres) -> None:
    postmaster_pid = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    assert psutil.Process(postmaster_pid).uids().real != 0
    assert postgres.data_dir.stat().st_mode & 0o077 == 0


async def test_ensure_database_is_idempotent_and_url_works(postgres: EmbeddedPostgres) -> None:
    first = postgres.ensure_database("svc_idem")
    again = postgres.ensure_database("svc_idem")
    try:
        assert first == again
        assert first.startswith("postgresql+asyncpg://svc_idem:")
        assert first.endswith(f"@127.0.0.1:{postgres.port}/svc_idem")
        engine = create_async_engine(first)
        try:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
                who = await connection.execute(
                    text("SELECT current_user || '@' || current_database()")
                )
                assert who.scalar_one() == "svc_idem@svc_idem"
                owner = await connection.execute(
                    text(
                        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'svc_idem'"
                    )
                )
                assert owner.scalar_one() == "svc_idem"
        finally:
            await engine.dispose()
    finally:
        postgres.drop_database("svc_idem")


async def test_explicit_password_and_owner_are_applied(postgres: EmbeddedPostgres) -> None:
    url = postgres.ensure_database("svc_owned", owner="svc_owner", password="first-pass-123")
    try:
        assert url.startswith("postgresql+asyncpg://svc_owner:first-pass-123@")
        assert await _fetch(url, "SELECT current_user") == "svc_owner"
        rotated = postgres.ensure_database(
            "svc_owned", owner="svc_owner", password="second/pass@456"
        )
        assert "second%2Fpass%40456" in rotated  # URL-encoded
        assert await _fetch(rotated, "SELECT current_user") == "svc_owner"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _fetch(url, "SELECT 1")
    finally:
        postgres.drop_database("svc_owned")


async def test_one_service_role_cannot_open_another_database(postgres: EmbeddedPostgres) -> None:
    url_a = postgres.ensure_database("svc_a")
    postgres.ensure_database("svc_b")
    try:
        intruder = url_a.rsplit("/", 1)[0] + "/svc_b"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _fetch(intruder, "SELECT 1")
    finally:
        postgres.drop_database("svc_a")
        postgres.drop_database("svc_b")


async def test_drop_database_removes_it_and_its_role_despite_open_connections(
    postgres: EmbeddedPostgres,
) -> None:
    url = postgres.ensure_database("svc_doomed")
    connection = await asyncpg.connect(_plain(url))
    try:
        postgres.drop_database("svc_doomed")
        assert (
            postgres.psql("SELECT count(*) FROM pg_database WHERE datname = 'svc_doomed'") == "0\n"
        )
        assert postgres.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'svc_doomed'") == "0\n"
        postgres.drop_database("svc_doomed")  # absent: not an error
    finally:
        connection.terminate()


def test_bad_names_and_passwords_are_rejected(postgres: EmbeddedPostgres) -> None:
    for name in ("Upper", "semi;colon", "postgres", "pg_catalog", "x" * 64, "1abc"):
        with pytest.raises(ValueError, match="lower-case identifier"):
            postgres.ensure_database(name)
    with pytest.raises(ValueError, match="printable ASCII"):
        postgres.ensure_database("svc_pw", password="has space in it")


async def test_data_survives_restart_on_the_same_port(private_postgres: EmbeddedPostgres) -> None:
    url = private_postgres.ensure_database("keep", password="keep-password-1")
    await _fetch(url, "CREATE TABLE kept AS SELECT 42 AS answer")
    port = private_postgres.port

    private_postgres.restart()

    assert private_postgres.port == port
    assert await _fetch(url, "SELECT answer FROM kept") == 42


async def test_kill_then_start_recovers_committed_data(private_postgres: EmbeddedPostgres) -> None:
    url = private_postgres.ensure_database("crashy", password="crash-password-1")
    await _fetch(url, "CREATE TABLE ledger AS SELECT generate_series(1, 1000) AS n")

    private_postgres.kill()
    assert not private_postgres.is_running
    assert not accepts_connections(private_postgres.port)

    private_postgres.start()
    assert await _fetch(url, "SELECT sum(n) FROM ledger") == 500500
    assert "database system was interrupted" in private_postgres.log_path.read_text()


def test_data_dir_is_reused_and_restart_is_fast(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg" / "data"
    with EmbeddedPostgres(data_dir) as first:
        first.psql("CREATE TABLE marker (id int)")
    initialised = (data_dir / "PG_VERSION").stat().st_mtime_ns

    second = EmbeddedPostgres(data_dir)
    started = time.monotonic()
    with second:
        elapsed = time.monotonic() - started
        assert second.psql("SELECT to_regclass('marker') IS NOT NULL") == "t\n"
    assert elapsed < 3.0
    assert (data_dir / "PG_VERSION").stat().st_mtime_ns == initialised


def test_long_data_dir_uses_a_short_socket_dir(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4) / "data"
    assert len(str(deep)) > 107
    with EmbeddedPostgres(deep) as server:
        assert server.psql("SELECT 1") == "1\n"
        socket_dir = Path(server.admin_dsn.split("host=")[1].split("&")[0])
        assert len(str(socket_dir)) < 60
    assert not socket_dir.exists()


def test_leftover_server_on_the_data_dir_is_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orphan = EmbeddedPostgres(data_dir)
    orphan.start()
    orphan_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    try:
        # A new owner (say, `make run` after the previous runner was SIGKILLed) takes over.
        with EmbeddedPostgres(data_dir) as successor:
            assert successor.psql("SELECT 1") == "1\n"
            assert int((data_dir / "postmaster.pid").read_text().split()[0]) != orphan_pid
    finally:
        orphan.stop()
    assert not psutil.pid_exists(orphan_pid)


def test_foreign_files_in_data_dir_are_not_overwritten(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "precious.txt").write_text("do not lose me")
    with pytest.raises(PostgresError, match="refusing to initialise"):
        EmbeddedPostgres(data_dir).start()
    assert (data_dir / "precious.txt").read_text() == "do not lose me"
