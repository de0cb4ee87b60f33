"""``Mt5Client``: typed calls of the MT5 manager Web API.

    async with Mt5Client("https://mt5.example:443", 1000, password) as mt5:
        user = await mt5.get_user(500123)
        ticket = await mt5.trade_balance(500123, BalanceType.BALANCE, Decimal("100.00"), "dep#1")

Reads (``get_*``) are idempotent and retried on transient failures; writes
(``add_user``, ``update_user``, ``trade_balance``) are never repeated once they may have
reached the server: they fail with ``Mt5Unavailable(maybe_applied=True)`` instead.
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from pipworks_mtbridge.mt5.errors import Mt5Error, Mt5InvalidParams
from pipworks_mtbridge.mt5.protocol import PasswordHash
from pipworks_mtbridge.mt5.records import (
    BalanceType,
    Mt5Account,
    Mt5Deal,
    Mt5Group,
    Mt5Position,
    Mt5User,
)
from pipworks_mtbridge.mt5.session import Mt5Session
from pipworks_mtbridge.mt5.wire import to_int, to_wire_decimal, to_wire_seconds

__all__ = ["MAX_COMMENT_LENGTH", "Mt5Client"]

MAX_COMMENT_LENGTH = 32
_BATCH = 200  # logins per batch request, to keep URLs short


def _chunks(logins: Sequence[int]) -> Iterator[str]:
    unique = list(dict.fromkeys(_login(x) for x in logins))
    for i in range(0, len(unique), _BATCH):
        yield ",".join(str(x) for x in unique[i : i + _BATCH])


def _login(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Mt5InvalidParams("a login is a positive integer")
    return value


def _answer(envelope: dict[str, Any]) -> Any:
    if "answer" not in envelope:
        raise Mt5Error("malformed reply: answer is missing")
    return envelope["answer"]


def _list(envelope: dict[str, Any]) -> list[Any]:
    answer = _answer(envelope)
    if answer is None:
        return []
    if not isinstance(answer, list):
        raise Mt5Error("malformed reply: answer is not a list")
    return answer


class Mt5Client:
    """A manager connection to one MT5 server (one keep-alive, authenticated session).

    The password is reduced to the protocol's hash at once and never logged or shown.
    Use as an async context manager, or call ``connect()`` and ``close()``. Calls made
    without ``connect()`` authenticate lazily.
    """

    def __init__(
        self,
        base_url: str,
        manager_login: int,
        password: str,
        *,
        agent: str = "pipworks",
        version: int = 484,
        timeout: float = 10.0,
        keepalive_interval: float = 20.0,
        read_retries: int = 3,
        ssl: ssl_module.SSLContext | bool | None = None,
    ) -> None:
        self.base_url = base_url
        self.manager_login = _login(manager_login)
        self._session = Mt5Session(
            base_url,
            self.manager_login,
            PasswordHash(password),
            agent=agent,
            version=version,
            timeout=timeout,
            keepalive_interval=keepalive_interval,
            read_retries=read_retries,
            ssl=ssl,
        )

    def __repr__(self) -> str:
        return f"Mt5Client(base_url={self.base_url!r}, manager_login={self.manager_login})"

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Authenticate now: ``Mt5AuthError`` for a wrong password or a lying server,
        ``Mt5Unavailable`` when the server cannot be reached."""
        await self._session.open()

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def authenticated(self) -> bool:
        return self._session.authenticated

    async def ping(self) -> None:
        """``/api/test/access``: a cheap round trip that also proves the session."""
        await self._session.request("/api/test/access", idempotent=True)

    # -- users -------------------------------------------------------------------------

    async def add_user(
        self,
        *,
        group: str,
        name: str,
        email: str,
        leverage: int,
        password_main: str,
        password_investor: str,
        login: int | None = None,
        rights: int | None = None,
    ) -> Mt5User:
        """``/api/user/add``; the server assigns the login unless one is given."""
        user: dict[str, Any] = {
            "Group": group,
            "Name": name,
            "Email": email,
            "Leverage": str(leverage),
        }
        if login is not None:
            user["Login"] = str(_login(login))
        if rights is not None:
            user["Rights"] = str(int(rights))
        envelope = await self._session.request(
            "/api/user/add",
            {"pass_main": password_main, "pass_investor": password_investor},
            user,
            idempotent=False,
        )
        return Mt5User.from_wire(_answer(envelope))

    async def get_user(self, login: int) -> Mt5User:
        envelope = await self._session.request(
            "/api/user/get", {"login": _login(login)}, idempotent=True
        )
        return Mt5User.from_wire(_answer(envelope))

    async def update_user(
        self,
        login: int,
        *,
        leverage: int | None = None,
        rights: int | None = None,
        group: str | None = None,
    ) -> Mt5User:
        """``/api/user/update`` of the given fields only; returns the updated user.

        Setting fields to fixed values is safe to repeat, so this is retried like a read.
        """
        user: dict[str, Any] = {"Login": str(_login(login))}
        if leverage is not None:
            user["Leverage"] = str(leverage)
        if rights is not None:
            user["Rights"] = str(int(rights))
        if group is not None:
            user["Group"] = group
        envelope = await self._session.request("/api/user/update", None, user, idempotent=True)
        return Mt5User.from_wire(_answer(envelope))

    # -- accounts ----------------------------------------------------------------------

    async def get_account(self, login: int) -> Mt5Account:
        envelope = await self._session.request(
            "/api/user/account/get", {"login": _login(login)}, idempotent=True
        )
        return Mt5Account.from_wire(_answer(envelope))

    async def get_accounts(self, logins: Sequence[int]) -> list[Mt5Account]:
        """Accounts of existing logins among ``logins`` (unknown ones are left out)."""
        accounts: list[Mt5Account] = []
        for chunk in _chunks(logins):
            envelope = await self._session.request(
                "/api/user/account/get_batch", {"login": chunk}, idempotent=True
            )
            accounts.extend(Mt5Account.from_wire(a) for a in _list(envelope))
        return accounts

    # -- money -------------------------------------------------------------------------

    async def trade_balance(
        self, login: int, kind: BalanceType, amount: Decimal, comment: str
    ) -> int:
        """``/api/trade/balance``: a signed balance or credit operation; the deal ticket.

        Withdrawals (negative amounts) ask the server to check free margin, so an
        account that cannot cover them fails with ``Mt5NotEnoughMoney``.
        """
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
            raise Mt5InvalidParams("amount must be a non-zero finite Decimal")
        if len(comment) > MAX_COMMENT_LENGTH:
            raise Mt5InvalidParams(f"comment longer than {MAX_COMMENT_LENGTH} characters")
        envelope = await self._session.request(
            "/api/trade/balance",
            {
                "login": _login(login),
                "type": int(BalanceType(kind)),
                "balance": to_wire_decimal(amount),
                "comment": comment,
                "check_margin": 1 if amount < 0 else 0,
            },
            idempotent=False,
        )
        answer = _answer(envelope)
        if not isinstance(answer, dict) or "ticket" not in answer:
            raise Mt5Error("malformed reply: the deal ticket is missing")
        try:
            return to_int(answer["ticket"])
        except ValueError:
            raise Mt5Error("malformed reply: the deal ticket is not a number") from None

    # -- history and positions ---------------------------------------------------------

    def _selector(self, logins: Sequence[int] | None, group: str | None) -> list[dict[str, str]]:
        if (logins is None) == (group is None):
            raise Mt5InvalidParams("select by either logins or a group mask")
        if group is not None:
            if not group:
                raise Mt5InvalidParams("empty group mask")
            return [{"group": group}]
        return [{"login": chunk} for chunk in _chunks(logins or ())]

    async def get_deals(
        self,
        *,
        logins: Sequence[int] | None = None,
        group: str | None = None,
        since: datetime,
        until: datetime,
    ) -> list[Mt5Deal]:
        """Deals with ``since <= time <= until`` of the logins or group mask, ordered by
        (time, ticket). MT5 filters in whole seconds; the result is cut to the exact range.
        """
        if until < since:
            raise Mt5InvalidParams("until is before since")
        window = {
            "from": str(to_wire_seconds(since)),
            "to": str(to_wire_seconds(until, round_up=True)),
        }
        deals: dict[int, Mt5Deal] = {}
        for selector in self._selector(logins, group):
            envelope = await self._session.request(
                "/api/deal/get_batch", {**selector, **window}, idempotent=True
            )
            for raw in _list(envelope):
                deal = Mt5Deal.from_wire(raw)
                if since <= deal.time <= until:
                    deals[deal.ticket] = deal
        return sorted(deals.values(), key=lambda d: (d.time, d.ticket))

    async def get_positions(
        self, *, logins: Sequence[int] | None = None, group: str | None = None
    ) -> list[Mt5Position]:
        positions: list[Mt5Position] = []
        for selector in self._selector(logins, group):
            envelope = await self._session.request(
                "/api/position/get_batch", selector, idempotent=True
            )
            positions.extend(Mt5Position.from_wire(p) for p in _list(envelope))
        return positions

    # -- groups ------------------------------------------------------------------------

    async def get_group(self, name: str) -> Mt5Group:
        if not name:
            raise Mt5InvalidParams("empty group name")
        envelope = await self._session.request("/api/group/get", {"group": name}, idempotent=True)
        return Mt5Group.from_wire(_answer(envelope))
