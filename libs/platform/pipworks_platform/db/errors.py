"""Classify database failures: transient ones are retried, never treated as poison."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

# SQLSTATE classes/codes worth retrying: connection exceptions, serialization failure,
# deadlock, admin/crash shutdown, cannot connect now, too many connections.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P")
_TRANSIENT_SQLSTATES = {"40001", "40P01", "53300"}


def is_transient_db_error(error: BaseException) -> bool:
    if isinstance(error, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return is_transient_db_error(error.orig) if error.orig is not None else False
    if isinstance(error, sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    if isinstance(error, asyncpg.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    cause = error.__cause__
    return cause is not None and cause is not error and is_transient_db_error(cause)
