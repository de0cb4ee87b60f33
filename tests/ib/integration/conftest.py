"""An in-process ib service on the session's PostgreSQL and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.ib.support import Ib, running_ib
from tests.tokens import TokenAuthority


@pytest.fixture
async def ib(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> AsyncIterator[Ib]:
    async with running_ib(database_url, nats_url, token_authority) as running:
        yield running
