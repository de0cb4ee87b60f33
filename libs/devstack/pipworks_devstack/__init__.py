"""Local Pipworks stack: embedded PostgreSQL, nats-server with JetStream, the suite runner.

Used by ``make run`` (see :mod:`pipworks_devstack.runner`) and by the test suite's
fixtures, so both run against the same real servers.
"""

from pipworks_devstack.nats import NatsError, NatsServer
from pipworks_devstack.postgres import EmbeddedPostgres, PostgresError

__all__ = ["EmbeddedPostgres", "NatsError", "NatsServer", "PostgresError"]
