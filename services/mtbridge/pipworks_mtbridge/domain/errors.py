"""Failures the trading platform reports, in the domain's terms.

Adapters translate their platform's errors into these; handlers turn them into
:mod:`pipworks_platform.errors` statuses. Nothing here knows about MT5 or HTTP.
"""

from __future__ import annotations


class PlatformError(Exception):
    """The trading platform refused or failed a request."""


class PlatformUnavailable(PlatformError):
    """The platform cannot be reached (down, timing out, refusing our manager login)."""


class PlatformNotFound(PlatformError):
    """The platform does not know the login, group or deal."""


class PlatformRejected(PlatformError):
    """The platform understood the request and refused it (bad parameters, weak password)."""


class NotEnoughMoney(PlatformRejected):
    """A debit would take the account below what it may lose."""
