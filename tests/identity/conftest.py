"""Fixtures for the identity tests: an in-process identity on real PostgreSQL and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS

from tests.identity.support import ADMIN_EMAIL, ADMIN_PASSWORD, Identity, running_identity


@pytest.fixture
async def identity(database_url: str, nats_url: str) -> AsyncIterator[Identity]:
    """Identity with a bootstrap admin, over a real gRPC socket (no relay)."""
    async with running_identity(
        database_url,
        nats_url,
        identity_bootstrap_admin_email=ADMIN_EMAIL,
        identity_bootstrap_admin_password=ADMIN_PASSWORD,
    ) as running:
        yield running


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
