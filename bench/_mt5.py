"""The MT5 side shared by the benches: the simulator process, the bridge, its accounts.

Two ways to give the bridge accounts. :func:`open_accounts` is production's: a
``kyc.application.approved`` event per user, so the bridge creates the login on the
simulator (``/api/user/add``) and maps it to the user, then a balance operation per
login, which the bridge syncs and publishes like any deposit; the bridge opens one
account at a time (three commits and two MT5 calls each). :func:`funded_users` and
:func:`seed_accounts` are the fast way for thousands of accounts: the simulator starts
from a state file with funded logins (built with its own ``SimState``), and the same
logins are written into the bridge's own ``accounts`` table (after its migrations) with
COPY, as if the bridge had opened them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bench._harness import BenchContext, BenchError, patience, wait_until
from bench._services import Keys, ServiceSpec
from pipworks.events.v1 import kyc_pb2, mtbridge_pb2
from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.main import DEFINITION
from pipworks_mtbridge.mt5 import BalanceType, Mt5Client
from pipworks_mtbridge.mt5sim.persistence import write_file
from pipworks_mtbridge.mt5sim.pricing import PriceFeed
from pipworks_mtbridge.mt5sim.state import SimState
from pipworks_platform.db.migrations import upgrade_to_head
from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.streams import ensure_stream, service_stream

SERVER = "mt5-live"
GROUP_PREFIX = "real\\"
GROUP = "real\\standard"
MANAGER_LOGIN = 1000
MANAGER_PASSWORD = "Bench-Manager-1"  # noqa: S105 - a throwaway simulator's password
POLL = 0.02
LEVERAGE = 100
ACCOUNT_PASSWORD = "Bench-Trader-1"  # noqa: S105 - a throwaway simulator's password

STREAM = service_stream("mtbridge").name
DEAL_SUBJECT = subject_of(mtbridge_pb2.MtDealExecuted)
OPENED_SUBJECT = subject_of(mtbridge_pb2.MtAccountOpened)
BALANCE_SUBJECT = subject_of(mtbridge_pb2.MtBalanceChanged)


@asynccontextmanager
async def simulator(
    ctx: BenchContext, state: SimState | None = None
) -> AsyncIterator[Mt5SimProcess]:
    """``python -m pipworks_mtbridge.mt5sim`` in the run's scratch directory, starting from
    ``state`` when given; stopped on exit."""
    (ctx.workdir / "mt5sim").mkdir(parents=True, exist_ok=True)
    state_file = ctx.workdir / "mt5sim" / f"state-{uuid.uuid4().hex[:8]}.json"
    if state is not None:
        await write_file(state_file, state)
    sim = Mt5SimProcess(
        state_file,
        manager_login=MANAGER_LOGIN,
        manager_password=MANAGER_PASSWORD,
        tick_interval=0.25,
        save_interval=3600.0,  # a save pauses the simulator's loop: not during a bench
    )
    await asyncio.to_thread(sim.start)
    try:
        yield sim
    finally:
        await asyncio.to_thread(sim.stop)


def bridge_spec(keys: Keys, sim_url: str, sync_interval: float) -> ServiceSpec:
    """``python -m pipworks_mtbridge`` managing the simulator, opening KYC accounts in GROUP."""
    env = {
        **keys.env(),
        "PIPWORKS_MTBRIDGE_SERVERS": f"{SERVER}={sim_url}|{MANAGER_LOGIN}|{GROUP_PREFIX}",
        "PIPWORKS_MTBRIDGE_PASSWORD_MT5_LIVE": MANAGER_PASSWORD,
        "PIPWORKS_MTBRIDGE_KYC_SERVER": SERVER,
        "PIPWORKS_MTBRIDGE_KYC_GROUP": GROUP,
        "PIPWORKS_MTBRIDGE_SYNC_INTERVAL_SECONDS": str(sync_interval),
        "PIPWORKS_MTBRIDGE_MARGIN_INTERVAL_SECONDS": "60",  # out of the way of the figures
    }
    return ServiceSpec("mtbridge", "pipworks_mtbridge", env)


async def sim_control(sim: Mt5SimProcess, method: str, path: str, body: object = None) -> dict:
    reply = await asyncio.to_thread(sim.control, method, path, body)
    if not str(reply.get("retcode", "")).startswith("0"):
        raise BenchError(f"mt5sim {method} {path}: {reply}")
    return reply


async def subject_count(js: JetStreamContext, subject: str) -> int:
    try:
        info = await js.stream_info(STREAM, subjects_filter=subject)
    except NotFoundError:
        return 0
    return (info.state.subjects or {}).get(subject, 0)


async def wait_count(
    js: JetStreamContext, subject: str, count: int, what: str, alive: Callable[[], None]
) -> None:
    async def reached() -> bool:
        alive()
        return await subject_count(js, subject) >= count

    await wait_until(reached, within=patience(count, 200.0), what=what, poll=POLL)


async def read_subject(js: JetStreamContext, subject: str, count: int) -> list[Msg]:
    psub = await js.pull_subscribe(subject, stream=STREAM)
    try:
        found: list[Msg] = []
        while len(found) < count:
            found.extend(await psub.fetch(min(count - len(found), 1000), timeout=5))
        return found
    finally:
        await psub.unsubscribe()


async def open_accounts(
    js: JetStreamContext,
    sim: Mt5SimProcess,
    users: Sequence[uuid.UUID],
    funding: Decimal,
    alive: Callable[[], None],
) -> dict[int, uuid.UUID]:
    """A KYC approval per user; the logins the bridge opened (login → user), each funded
    with ``funding`` once the bridge has published every opening."""
    await ensure_stream(js, service_stream("kyc"))
    before = await subject_count(js, OPENED_SUBJECT)
    for user in users:
        approved = kyc_pb2.KycApplicationApproved(
            application_id=str(uuid.uuid4()), user_id=str(user), level=2
        )
        headers = nats_headers(
            event_id=str(uuid.uuid4()),
            event_type=approved.DESCRIPTOR.full_name,
            occurred_at=datetime.now(UTC),
            extra={},
        )
        await js.publish_async(subject_of(approved), approved.SerializeToString(), headers=headers)
    await js.publish_async_completed()
    count = before + len(users)
    await wait_count(js, OPENED_SUBJECT, count, "the bridge to open the accounts", alive)
    opened = [
        mtbridge_pb2.MtAccountOpened.FromString(msg.data)
        for msg in await read_subject(js, OPENED_SUBJECT, count)
    ]
    wanted = set(users)
    logins = {o.login: uuid.UUID(o.user_id) for o in opened if uuid.UUID(o.user_id) in wanted}
    if len(logins) != len(users):
        raise BenchError(f"the bridge opened {len(logins)} accounts for {len(users)} users")
    funded = await subject_count(js, BALANCE_SUBJECT)
    await fund(sim, sorted(logins), funding)
    await wait_count(
        js, BALANCE_SUBJECT, funded + len(logins), "the funding to be published", alive
    )
    return logins


async def fund(sim: Mt5SimProcess, logins: Sequence[int], amount: Decimal) -> None:
    """A balance deposit of ``amount`` on every login (one MT5 session: one at a time)."""
    async with Mt5Client(sim.url, MANAGER_LOGIN, MANAGER_PASSWORD) as client:
        for login in logins:
            await client.trade_balance(login, BalanceType.BALANCE, amount, "bench funding")


async def stop_activity(sim: Mt5SimProcess) -> None:
    """Stop every activity generator; a failure here must not hide the bench's own."""
    with contextlib.suppress(Exception):
        await sim_control(sim, "DELETE", "/sim/activity")


def funded_users(count: int, funding: Decimal) -> SimState:
    """Simulator state with ``count`` logins in GROUP, each with a balance of ``funding``."""
    rng = random.Random(1)
    state = SimState(PriceFeed(rng), rng)
    for index in range(count):
        user = state.add_user(
            group=GROUP,
            name=f"Bench client {index}",
            email="",
            leverage=LEVERAGE,
            password_main=ACCOUNT_PASSWORD,
            password_investor=ACCOUNT_PASSWORD,
        )
        user.balance = funding
    return state


async def migrate_bridge(url: str) -> None:
    """The bridge's schema, as its own start-up would migrate it."""
    assert DEFINITION.migrations is not None
    await upgrade_to_head(url, DEFINITION.migrations, service="mtbridge")


async def seed_accounts(conn: asyncpg.Connection, owners: Mapping[int, uuid.UUID]) -> None:
    """The bridge's accounts for ``owners`` (login → user) on SERVER, in GROUP (USD)."""
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "accounts",
        records=[
            (SERVER, login, user, GROUP, "USD", 2, LEVERAGE, True, True, now)
            for login, user in owners.items()
        ],
        columns=[
            "server",
            "login",
            "user_id",
            "group_name",
            "currency",
            "currency_digits",
            "leverage",
            "trading_enabled",
            "withdrawals_enabled",
            "opened_at",
        ],
    )
