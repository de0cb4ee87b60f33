"""Fixtures for the kyc tests: the service in-process on real PostgreSQL and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.kyc.support import Kyc, running_kyc
from tests.tokens import TokenAuthority


@pytest.fixture
async def kyc(
    database_url: str, nats_url: str, token_authority: TokenAuthority, tmp_path: Path
) -> AsyncIterator[Kyc]:
    async with running_kyc(database_url, nats_url, token_authority, tmp_path / "blobs") as running:
        yield running
