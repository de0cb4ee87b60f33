"""Fixtures for the whole suite: real PostgreSQL and a real nats-server, one of each per
pytest worker (xdist), in the worker's own temporary directory on free ports.

Tests get isolation per test instead of per server: ``database_url`` is a fresh
database and role, ``nats_url`` a JetStream with no streams left over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipworks_devstack import EmbeddedPostgres, NatsServer
from pipworks_devstack.testing import fresh_database, purge_jetstream
from tests.tokens import TokenAuthority


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A running PostgreSQL for this worker, stopped at the end of the session."""
    root = tmp_path_factory.mktemp("postgres")
    with EmbeddedPostgres(root / "data", port=0) as server:
        yield server


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A running nats-server with JetStream for this worker, stopped at the end of the session.

    Tests may stop or kill it; ``nats_url`` brings it back for the next test.
    """
    root = tmp_path_factory.mktemp("nats")
    with NatsServer(root / "store", port=0, monitor_port=0) as server:
        yield server


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """``postgresql+asyncpg://`` URL of a database created for this test and dropped after it."""
    with fresh_database(postgres) as url:
        yield url


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """URL of a running nats-server whose JetStream holds no streams."""
    nats_server.start()  # a no-op unless an earlier test stopped or killed it
    purge_jetstream(nats_server.url)
    return nats_server.url


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans of this worker, from an SDK tracer provider installed once per process."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session")
def token_authority() -> TokenAuthority:
    """An Ed25519 signing key with its JWKS, minting access tokens for tests."""
    return TokenAuthority()
