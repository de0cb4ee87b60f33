"""Typed errors of the MT5 Web API: a retcode ``"<code> <message>"`` becomes an exception.

Messages come from the server's retcode text or from this package; they never carry the
manager password, its hash, request URLs or query strings.
"""

from __future__ import annotations

__all__ = [
    "Mt5AlreadyExists",
    "Mt5AuthError",
    "Mt5Error",
    "Mt5InvalidParams",
    "Mt5NotEnoughMoney",
    "Mt5NotFound",
    "Mt5PermissionDenied",
    "Mt5TradeDisabled",
    "Mt5Unavailable",
    "Mt5WeakPassword",
    "Retcode",
    "error_for_retcode",
    "parse_retcode",
]


class Retcode:
    """The MT5 return codes this package and the simulator use (``MT_RET_*``)."""

    OK = 0
    OK_NONE = 1
    ERROR = 2
    INVALID_PARAMS = 3
    NETWORK = 7
    PERMISSIONS = 8
    TIMEOUT = 9
    CONNECTION = 10
    NO_SERVICE = 11
    TOO_FREQUENT = 12
    NOT_FOUND = 13
    SHUTDOWN = 15
    DUPLICATE = 17
    AUTH_FIRST = 1000
    AUTH_ACCOUNT_INVALID = 1001
    AUTH_LAST = 1999
    USER_LOGIN_EXISTS = 3004
    USER_INVALID_PASSWORD = 3006
    TRADE_DISABLED = 10017
    NO_MONEY = 10019


class Mt5Error(Exception):
    """An MT5 Web API failure: ``retcode`` and the server's (or our) ``message``."""

    default_retcode: int = Retcode.ERROR

    def __init__(self, message: str, retcode: int | None = None) -> None:
        self.retcode = self.default_retcode if retcode is None else retcode
        self.message = message
        super().__init__(f"{self.retcode} {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(retcode={self.retcode}, message={self.message!r})"


class Mt5AuthError(Mt5Error):
    """Handshake refused (1000-range, wrong password) or a server that failed to prove it
    knows the password (wrong ``cli_rand_answer``)."""

    default_retcode = Retcode.AUTH_ACCOUNT_INVALID


class Mt5InvalidParams(Mt5Error):
    """Retcode 3: the request's parameters were refused."""

    default_retcode = Retcode.INVALID_PARAMS


class Mt5NotFound(Mt5Error):
    """Retcode 13: no such user, account, group, ..."""

    default_retcode = Retcode.NOT_FOUND


class Mt5AlreadyExists(Mt5Error):
    """Retcode 3004 (login exists) or 17 (duplicate)."""

    default_retcode = Retcode.USER_LOGIN_EXISTS


class Mt5WeakPassword(Mt5Error):
    """Retcode 3006: the trading password does not meet the server's policy."""

    default_retcode = Retcode.USER_INVALID_PASSWORD


class Mt5NotEnoughMoney(Mt5Error):
    """Retcode 10019: not enough balance, credit or free margin."""

    default_retcode = Retcode.NO_MONEY


class Mt5PermissionDenied(Mt5Error):
    """Retcode 8: the operation is not allowed (e.g. withdrawals blocked by user rights)."""

    default_retcode = Retcode.PERMISSIONS


class Mt5TradeDisabled(Mt5Error):
    """Retcode 10017: trading is disabled for the account."""

    default_retcode = Retcode.TRADE_DISABLED


class Mt5Unavailable(Mt5Error):
    """The server could not be reached or answered with a transient failure (network,
    timeout, HTTP 5xx, shutdown), after any retries that were safe.

    ``maybe_applied`` is true when a non-idempotent request (``trade/balance``,
    ``user/add``) may have reached the server before the failure: the caller must
    reconcile (e.g. look the deal up by its comment) instead of repeating it blindly.
    """

    default_retcode = Retcode.CONNECTION

    def __init__(
        self, message: str, retcode: int | None = None, *, maybe_applied: bool = False
    ) -> None:
        super().__init__(message, retcode)
        self.maybe_applied = maybe_applied


_BY_CODE: dict[int, type[Mt5Error]] = {
    Retcode.INVALID_PARAMS: Mt5InvalidParams,
    Retcode.NOT_FOUND: Mt5NotFound,
    Retcode.USER_LOGIN_EXISTS: Mt5AlreadyExists,
    Retcode.DUPLICATE: Mt5AlreadyExists,
    Retcode.USER_INVALID_PASSWORD: Mt5WeakPassword,
    Retcode.NO_MONEY: Mt5NotEnoughMoney,
    Retcode.PERMISSIONS: Mt5PermissionDenied,
    Retcode.TRADE_DISABLED: Mt5TradeDisabled,
    Retcode.NETWORK: Mt5Unavailable,
    Retcode.TIMEOUT: Mt5Unavailable,
    Retcode.CONNECTION: Mt5Unavailable,
    Retcode.NO_SERVICE: Mt5Unavailable,
    Retcode.TOO_FREQUENT: Mt5Unavailable,
    Retcode.SHUTDOWN: Mt5Unavailable,
}


def parse_retcode(text: object) -> tuple[int, str]:
    """Split a retcode field (``"3004 User exists"``) into its code and message.

    Anything that is not ``<digits>[ message]`` is a protocol violation: ``Mt5Error``.
    """
    if not isinstance(text, str):
        raise Mt5Error("malformed reply: retcode is missing or not a string")
    code, _, message = text.strip().partition(" ")
    if not code.isdigit():
        raise Mt5Error("malformed reply: retcode does not start with a number")
    return int(code), message.strip()


def error_for_retcode(code: int, message: str) -> Mt5Error:
    """The typed exception for a non-success retcode."""
    if Retcode.AUTH_FIRST <= code <= Retcode.AUTH_LAST:
        return Mt5AuthError(message, code)
    return _BY_CODE.get(code, Mt5Error)(message, code)
