"""One async engine per service process, built by its composition root."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine


def asyncpg_url(url: str) -> str:
    """Normalise a PostgreSQL URL to SQLAlchemy's asyncpg dialect."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """The plain ``postgresql://`` form asyncpg.connect() accepts."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, application_name: str, pool_size: int = 10) -> AsyncEngine:
    return _create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per transaction. A connection found dead
        # invalidates the pool instead, and the failed call reports UNAVAILABLE.
        pool_recycle=1800,
        hide_parameters=True,  # SQL parameters (emails, hashes) never reach logs
        connect_args={"server_settings": {"application_name": application_name}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's current transaction, for hot paths
    where SQLAlchemy's row handling costs more than the query.

    SQLAlchemy's asyncpg adapter sends BEGIN with its first statement, so one is run
    first when the transaction has not started yet: statements on the raw connection
    must never run outside it.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    conn = raw.driver_connection
    if not conn.is_in_transaction():
        await session.execute(sa.text("SELECT 1"))
    if not conn.is_in_transaction():
        raise RuntimeError("no transaction on the session's connection")
    return conn
