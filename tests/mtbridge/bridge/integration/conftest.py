"""An in-process bridge against the simulator, PostgreSQL and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.mtbridge.bridge.support import Bridge, SimControl, running_bridge
from tests.tokens import TokenAuthority


@pytest.fixture
async def bridge(
    database_url: str, nats_url: str, sim: SimControl, token_authority: TokenAuthority
) -> AsyncIterator[Bridge]:
    """The bridge's API only: no relay, consumers or background loops."""
    async with running_bridge(database_url, nats_url, sim.url, token_authority) as running:
        yield running
