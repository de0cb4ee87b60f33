"""PostgreSQL access: engine, unit of work, platform tables and migrations."""

from pipworks_platform.db.engine import (
    create_engine,
    driver_connection,
    libpq_dsn,
    session_factory,
)
from pipworks_platform.db.unit_of_work import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "UnitOfWork",
    "UnitOfWorkFactory",
    "create_engine",
    "driver_connection",
    "libpq_dsn",
    "session_factory",
]
