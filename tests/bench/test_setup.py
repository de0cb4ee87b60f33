"""The deal pipeline's set-up helpers against the real schemas, simulator and JetStream."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import nats

from bench._ib import migrate, plan_terms, seed_network
from bench._jetstream import STREAM, publish_consume
from bench._mt5 import GROUP, SERVER, funded_users, migrate_bridge, seed_accounts
from pipworks_platform.db import libpq_dsn


def test_funded_users_are_logins_in_the_bridge_group_with_money() -> None:
    state = funded_users(5, Decimal("10000"))
    assert len(state.users) == 5
    for user in state.users.values():
        assert user.group == GROUP
        assert user.balance == Decimal("10000")
        assert not user.trade_disabled


async def test_bridge_accounts_seed_into_the_bridge_schema(database_url: str) -> None:
    owners = {login: uuid.uuid4() for login in funded_users(3, Decimal(1)).users}
    await migrate_bridge(database_url)
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        await seed_accounts(conn, owners)
        rows = await conn.fetch("SELECT server, login, user_id, currency FROM accounts")
    finally:
        await conn.close()
    assert {(r["server"], r["login"], r["user_id"], r["currency"]) for r in rows} == {
        (SERVER, login, user, "USD") for login, user in owners.items()
    }


async def test_ib_network_gives_every_client_a_chain_of_ten(database_url: str) -> None:
    clients = [uuid.uuid4() for _ in range(7)]
    await migrate(database_url)
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        await seed_network(conn, clients, chains=3, terms=plan_terms(min_lifetime_seconds=0))
        depths = await conn.fetch(
            "SELECT a.client_user_id, count(*) AS chain FROM attributions a"
            " JOIN partner_tree t ON t.descendant_id = a.partner_id GROUP BY 1"
        )
    finally:
        await conn.close()
    assert {r["client_user_id"]: r["chain"] for r in depths} == dict.fromkeys(clients, 10)


async def test_publish_consume_moves_every_message(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        seconds = await publish_consume(nc, 300, 64)
        stored = (await nc.jetstream().stream_info(STREAM.name)).state.messages
    finally:
        await nc.close()
    assert seconds > 0
    assert stored == 300
