"""The suite-wide fixtures of tests/conftest.py and the helpers behind them."""

from __future__ import annotations

import re

import asyncpg
import nats
import pytest

from pipworks_devstack import EmbeddedPostgres, NatsServer
from pipworks_devstack.testing import fresh_database, purge_jetstream


async def test_database_url_is_a_fresh_empty_database(database_url: str) -> None:
    match = re.fullmatch(
        r"postgresql\+asyncpg://(t_[0-9a-f]{12}):[^@]+@127\.0\.0\.1:\d+/(\1)", database_url
    )
    assert match is not None, database_url
    connection = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        assert tables == 0
        # The owner can create what its migrations need.
        await connection.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
    finally:
        await connection.close()


def _exists(postgres: EmbeddedPostgres, catalog: str, column: str, name: str) -> bool:
    assert re.fullmatch(r"t_[0-9a-f]{12}", name)  # safe to interpolate
    count = postgres.psql(f"SELECT count(*) FROM {catalog} WHERE {column} = '{name}'")  # noqa: S608
    return count.strip() == "1"


def test_fresh_database_is_dropped_afterwards(postgres: EmbeddedPostgres) -> None:
    with fresh_database(postgres) as url:
        name = url.rsplit("/", 1)[1]
        assert _exists(postgres, "pg_database", "datname", name)
        assert _exists(postgres, "pg_roles", "rolname", name)
    assert not _exists(postgres, "pg_database", "datname", name)
    assert not _exists(postgres, "pg_roles", "rolname", name)


async def test_purge_jetstream_deletes_every_stream(nats_url: str) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for index in range(3):
            await js.add_stream(name=f"PURGE_{index}", subjects=[f"purge{index}.>"])
            await js.publish(f"purge{index}.x", b"x")
    finally:
        await client.close()

    assert sorted(purge_jetstream(nats_url)) == ["PURGE_0", "PURGE_1", "PURGE_2"]
    assert purge_jetstream(nats_url) == []


def test_nats_url_brings_a_killed_server_back(
    nats_server: NatsServer, request: pytest.FixtureRequest
) -> None:
    nats_server.start()
    nats_server.kill()
    assert not nats_server.is_running

    url = request.getfixturevalue("nats_url")

    assert url == nats_server.url
    assert nats_server.is_running
