"""Fixtures for the MT5 client and simulator tests: a real ``mt5sim`` subprocess over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_mtbridge.mt5 import Mt5Client, Mt5User

GROUP = "real\\standard"
TRADER_PASSWORD = "Trader-Pass1"
INVESTOR_PASSWORD = "Investor-Pass1"


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mt5SimProcess]:
    """One simulator shared by the tests that only need their own users (session scope)."""
    root = tmp_path_factory.mktemp("mt5sim")
    with Mt5SimProcess(root / "state.json", log_file=root / "mt5sim.log") as process:
        yield process


@pytest.fixture
def fresh_sim(tmp_path: Path) -> Iterator[Mt5SimProcess]:
    """A simulator of this test's own (for restarts, group-wide queries, failures)."""
    with Mt5SimProcess(tmp_path / "state.json", log_file=tmp_path / "mt5sim.log") as process:
        yield process


@pytest.fixture
async def client(sim: Mt5SimProcess) -> AsyncIterator[Mt5Client]:
    async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
        yield mt5


_names = itertools.count(1)


async def new_user(
    mt5: Mt5Client, *, group: str = GROUP, leverage: int = 100, rights: int | None = None
) -> Mt5User:
    n = next(_names)
    return await mt5.add_user(
        group=group,
        name=f"Trader {n}",
        email=f"trader{n}@example.com",
        leverage=leverage,
        password_main=TRADER_PASSWORD,
        password_investor=INVESTOR_PASSWORD,
        rights=rights,
    )
