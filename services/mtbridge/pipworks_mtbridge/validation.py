"""Turn API requests into validated commands, or reject them with every bad field named.

Nothing is read from the database or the trading platform before a request passes
here, so bad input never moves money or changes an account.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.common.v1 import pagination_pb2, payment_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks_mtbridge import commands
from pipworks_mtbridge.adapters.repositories import AccountCursor, DealCursor
from pipworks_mtbridge.domain.balance import OperationKind, PaymentDetails
from pipworks_mtbridge.domain.money import InvalidAmount, parse_amount
from pipworks_platform import page_tokens
from pipworks_platform.errors import Violations

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_GROUP_LENGTH = 64
MAX_LEVERAGE = 10_000
_SERVER = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
_CURRENCY = re.compile(r"[A-Z0-9]{3,8}")
_KEY = re.compile(r"[A-Za-z0-9._:@/+=-]{1,64}")
_PAYMENT_METHOD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FINGERPRINT = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_COUNTRY = re.compile(r"[A-Z]{2}")


class RequestParser:
    def open_account(self, request: pb.OpenAccountRequest) -> commands.OpenAccount:
        v = Violations()
        user_id = _uuid(v, "user_id", request.user_id)
        server = _server(v, request.server)
        group = request.group.strip()
        if v.check(group, "group", "is required"):
            v.check(
                len(group) <= MAX_GROUP_LENGTH,
                "group",
                f"must be at most {MAX_GROUP_LENGTH} characters",
            )
        _leverage(v, request.leverage)
        currency = request.currency.strip()
        if currency:
            v.check(
                _CURRENCY.fullmatch(currency), "currency", 'must be a currency code such as "USD"'
            )
        request_id = _uuid(v, "request_id", request.request_id) if request.request_id else None
        v.raise_if_any()
        return commands.OpenAccount(user_id, server, group, request.leverage, currency, request_id)

    def account(self, request: pb.GetAccountRequest) -> commands.AccountRef:
        v = Violations()
        ref = _account(v, request.server, request.login)
        v.raise_if_any()
        return ref

    def list_accounts(self, request: pb.ListAccountsRequest) -> commands.ListAccounts:
        v = Violations()
        user_id = _uuid(v, "user_id", request.user_id) if request.user_id else None
        query = page_tokens.fingerprint("accounts", user_id)
        size, cursor = _page(v, request.page, query)
        v.raise_if_any()
        after = None
        if cursor is not None:
            after = _from_cursor(
                v, lambda c: AccountCursor(_time(c["t"]), str(c["s"]), int(c["l"])), cursor
            )
            v.raise_if_any()
        return commands.ListAccounts(user_id, size, after)

    def change_leverage(self, request: pb.ChangeLeverageRequest) -> commands.ChangeLeverage:
        v = Violations()
        ref = _account(v, request.server, request.login)
        _leverage(v, request.leverage)
        v.raise_if_any()
        return commands.ChangeLeverage(ref, request.leverage)

    def set_trading_enabled(
        self, request: pb.SetTradingEnabledRequest
    ) -> commands.SetTradingEnabled:
        v = Violations()
        ref = _account(v, request.server, request.login)
        v.raise_if_any()
        return commands.SetTradingEnabled(ref, request.enabled)

    def move_money(
        self,
        request: pb.DepositRequest | pb.WithdrawRequest | pb.CreditRequest,
        kind: OperationKind,
    ) -> commands.MoveMoney:
        v = Violations()
        ref = _account(v, request.server, request.login)
        amount = _amount(v, request.amount, allow_negative=kind is OperationKind.CREDIT)
        key = request.idempotency_key
        if v.check(key, "idempotency_key", "is required"):
            v.check(
                _KEY.fullmatch(key),
                "idempotency_key",
                "must be 1-64 characters of letters, digits and ._:@/+=-",
            )
        payment = None
        if isinstance(request, pb.DepositRequest | pb.WithdrawRequest) and request.HasField(
            "payment"
        ):
            payment = _payment(v, request.payment)
        v.raise_if_any()
        return commands.MoveMoney(ref, kind, amount, key, payment)

    def list_deals(self, request: pb.ListDealsRequest) -> commands.ListDeals:
        v = Violations()
        scope = _scope(v, request)
        query = page_tokens.fingerprint("deals", scope)
        size, cursor = _page(v, request.page, query)
        v.raise_if_any()
        after = None
        if cursor is not None:
            after = _from_cursor(
                v, lambda c: DealCursor(_time(c["t"]), str(c["s"]), int(c["k"])), cursor
            )
            v.raise_if_any()
        return commands.ListDeals(scope, size, after)

    def list_positions(self, request: pb.ListPositionsRequest) -> commands.ListPositions:
        v = Violations()
        scope = _scope(v, request)
        query = page_tokens.fingerprint("positions", scope)
        size, cursor = _page(v, request.page, query)
        v.raise_if_any()
        after = None
        if cursor is not None:
            after = _from_cursor(
                v, lambda c: commands.PositionCursor(str(c["s"]), int(c["l"]), int(c["p"])), cursor
            )
            v.raise_if_any()
        return commands.ListPositions(scope, size, after)


def account_token(cursor: AccountCursor, user_id: uuid.UUID | None) -> str:
    body = {"t": cursor.opened_at.isoformat(), "s": cursor.server, "l": cursor.login}
    return page_tokens.encode(body, page_tokens.fingerprint("accounts", user_id))


def deal_token(cursor: DealCursor, scope: commands.Scope) -> str:
    body = {"t": cursor.executed_at.isoformat(), "s": cursor.server, "k": cursor.ticket}
    return page_tokens.encode(body, page_tokens.fingerprint("deals", scope))


def position_token(cursor: commands.PositionCursor, scope: commands.Scope) -> str:
    body = {"s": cursor.server, "l": cursor.login, "p": cursor.position_id}
    return page_tokens.encode(body, page_tokens.fingerprint("positions", scope))


def _scope(v: Violations, request: pb.ListDealsRequest | pb.ListPositionsRequest) -> commands.Scope:
    user_id = _uuid(v, "user_id", request.user_id) if request.user_id else None
    account = None
    if request.login or request.server:
        v.check(
            user_id is None and not request.user_id,
            "user_id",
            "name a user or an account, not both",
        )
        account = _account(v, request.server, request.login)
    start = _timestamp(v, request, "start_time")
    end = _timestamp(v, request, "end_time")
    if start is not None and end is not None:
        v.check(start < end, "end_time", "must be after start_time")
    return commands.Scope(user_id, account, start, end)


def _page(
    v: Violations, page: pagination_pb2.PageRequest, query: str
) -> tuple[int, dict[str, Any] | None]:
    v.check(page.page_size >= 0, "page.page_size", "must not be negative")
    size = min(page.page_size, MAX_PAGE_SIZE) if page.page_size > 0 else DEFAULT_PAGE_SIZE
    cursor = None
    if page.page_token:
        try:
            cursor = page_tokens.decode(page.page_token, query)
        except page_tokens.BadPageToken as exc:
            v.add("page.page_token", str(exc))
    return size, cursor


def _from_cursor(v: Violations, build: Callable[[dict[str, Any]], T], cursor: dict[str, Any]) -> T:
    try:
        return build(cursor)
    except (KeyError, TypeError, ValueError):
        v.add("page.page_token", "is not a page token from this service")
        return None  # type: ignore[return-value]


def _time(raw: object) -> datetime:
    parsed = datetime.fromisoformat(str(raw))
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed


def _timestamp(v: Violations, request: Any, field: str) -> datetime | None:
    if not request.HasField(field):
        return None
    stamp: Timestamp = getattr(request, field)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except ValueError:  # seconds outside years 1..9999, or nanos outside 0..999999999
        v.check(False, field, "must be a valid timestamp")
        return None


def _uuid(v: Violations, field: str, raw: str) -> uuid.UUID:
    if not v.check(raw.strip(), field, "is required"):
        return None  # type: ignore[return-value]
    try:
        if len(raw) > 64:
            raise ValueError
        return uuid.UUID(raw)
    except ValueError:
        v.add(field, "must be a UUID")
        return None  # type: ignore[return-value]


def _server(v: Violations, raw: str) -> str:
    server = raw.strip()
    if v.check(server, "server", "is required"):
        v.check(_SERVER.fullmatch(server), "server", "must be a server name such as mt5-live")
    return server


def _account(v: Violations, server: str, login: int) -> commands.AccountRef:
    name = _server(v, server)
    v.check(login > 0, "login", "must be a positive trading login")
    return commands.AccountRef(name, login)


def _leverage(v: Violations, leverage: int) -> None:
    v.check(0 < leverage <= MAX_LEVERAGE, "leverage", f"must be between 1 and {MAX_LEVERAGE}")


def _payment(v: Violations, payment: payment_pb2.PaymentDetails) -> PaymentDetails:
    v.check(
        _PAYMENT_METHOD.fullmatch(payment.method),
        "payment.method",
        "must be a lower-case word of 1-32 characters (card, bank_transfer, ewallet ...)",
    )
    if payment.instrument_fingerprint:
        v.check(
            _FINGERPRINT.fullmatch(payment.instrument_fingerprint),
            "payment.instrument_fingerprint",
            "must be 1-128 characters of letters, digits and ._:@/+=-",
        )
    if payment.country_code:
        v.check(
            _COUNTRY.fullmatch(payment.country_code),
            "payment.country_code",
            "must be an ISO 3166-1 alpha-2 code in capitals",
        )
    return PaymentDetails(payment.method, payment.instrument_fingerprint, payment.country_code)


def _amount(v: Violations, raw: str, *, allow_negative: bool) -> Decimal:
    try:
        amount = parse_amount(raw)
    except InvalidAmount as exc:
        v.add("amount", str(exc))
        return Decimal(0)
    if allow_negative:
        v.check(amount != 0, "amount", "must not be zero")
    else:
        v.check(amount > 0, "amount", "must be positive")
    return amount
