"""Platform failures as API statuses: a platform that is down is UNAVAILABLE, never INTERNAL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipworks_mtbridge.domain.errors import (
    NotEnoughMoney,
    PlatformNotFound,
    PlatformRejected,
    PlatformUnavailable,
)
from pipworks_platform.errors import FailedPrecondition, NotFound, Unavailable


@contextlib.contextmanager
def platform_errors(server: str) -> Iterator[None]:
    try:
        yield
    except PlatformUnavailable:
        raise Unavailable(
            "the trading server is unavailable; retry later",
            reason="PLATFORM_UNAVAILABLE",
            metadata={"server": server},
        ) from None
    except NotEnoughMoney:
        raise FailedPrecondition(
            "the account has not enough free margin", reason="INSUFFICIENT_FREE_MARGIN"
        ) from None
    except PlatformNotFound:
        raise NotFound(
            "trading account", server, reason="PLATFORM_NOT_FOUND", metadata={"server": server}
        ) from None
    except PlatformRejected:
        raise FailedPrecondition(
            "the trading server refused the request", reason="PLATFORM_REJECTED"
        ) from None
