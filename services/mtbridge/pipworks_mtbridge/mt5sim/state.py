"""The simulated trade server's state: users, groups, accounts, positions and deals.

Everything runs on the event loop thread, so each operation is atomic. Deals are kept in
ticket order with non-decreasing times, indexed globally and per login by time, so a
time-range query costs O(log n + answer) rather than a scan of every deal.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from pipworks_mtbridge.mt5sim.model import (
    BALANCE,
    BUY,
    CREDIT,
    ENTRY_IN,
    ENTRY_OUT,
    RIGHTS_DEFAULT,
    SELL,
    Deal,
    Group,
    Position,
    SimError,
    User,
    bad_params,
    money,
    not_found,
)
from pipworks_mtbridge.mt5sim.pricing import PriceFeed

__all__ = ["MAX_COMMENT", "AccountState", "SimState", "default_groups", "group_matcher"]

MAX_COMMENT = 32
FIRST_LOGIN = 500_000
FIRST_TICKET = 1_000
_LOWER, _UPPER, _DIGIT = re.compile("[a-z]"), re.compile("[A-Z]"), re.compile("[0-9]")


def default_groups() -> dict[str, Group]:
    groups = [
        Group("real\\standard", "USD", 2, 1, 500, Decimal(100), Decimal(50)),
        Group("real\\pro", "USD", 2, 1, 200, Decimal(100), Decimal(50), Decimal("3.5")),
        Group("real\\eur", "EUR", 2, 1, 500, Decimal(100), Decimal(50)),
        Group("demo\\standard", "USD", 2, 1, 1000, Decimal(80), Decimal(30)),
    ]
    return {g.name.lower(): g for g in groups}


def group_matcher(mask: str) -> Callable[[str], bool]:
    """MT5 group mask: comma-separated patterns with ``*``, ``!`` excludes; case-insensitive."""
    include: list[re.Pattern[str]] = []
    exclude: list[re.Pattern[str]] = []
    for raw in mask.split(","):
        pattern = raw.strip()
        if not pattern:
            continue
        target = exclude if pattern.startswith("!") else include
        body = pattern.lstrip("!")
        regex = ".*".join(re.escape(part) for part in body.split("*"))
        target.append(re.compile(f"^{regex}$", re.IGNORECASE))
    if not include:
        raise bad_params("empty group mask")

    def matches(name: str) -> bool:
        return any(p.match(name) for p in include) and not any(p.match(name) for p in exclude)

    return matches


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def check_password_policy(password: str) -> None:
    """MT5 policy: at least 8 characters with lower case, upper case and digits."""
    if not (
        8 <= len(password) <= 64
        and _LOWER.search(password)
        and _UPPER.search(password)
        and _DIGIT.search(password)
    ):
        raise SimError(3006, "Invalid password")


def lots_of(volume_ext: int) -> Decimal:
    return Decimal(volume_ext).scaleb(-8)


@dataclass(frozen=True, slots=True)
class AccountState:
    login: int
    currency: str
    currency_digits: int
    leverage: int
    balance: Decimal
    credit: Decimal
    profit: Decimal
    storage: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal


class SimState:
    """All server state and the operations on it; raises ``SimError`` for bad requests."""

    def __init__(
        self,
        feed: PriceFeed,
        rng: random.Random,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.feed = feed
        self.rng = rng
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.groups: dict[str, Group] = default_groups()  # keyed by lower-case name
        self.users: dict[int, User] = {}
        self.positions: dict[int, Position] = {}
        self.positions_by_login: dict[int, dict[int, Position]] = {}
        self.deals: list[Deal] = []
        self._deal_times: list[int] = []
        self._login_deals: dict[int, list[Deal]] = {}
        self._login_times: dict[int, list[int]] = {}
        self.next_login = FIRST_LOGIN
        self.next_ticket = FIRST_TICKET
        self.last_time_msc = 0
        self.changes = 0  # bumped on every mutation; the persister saves when it moved

    # -- clock and tickets -------------------------------------------------------------

    def now_msc(self) -> int:
        """Now in Unix ms, never earlier than the last deal (so time order = ticket order)."""
        self.last_time_msc = max(self._clock_ms(), self.last_time_msc)
        return self.last_time_msc

    def _ticket(self) -> int:
        ticket = self.next_ticket
        self.next_ticket += 1
        return ticket

    # -- groups and users --------------------------------------------------------------

    def group(self, name: str) -> Group:
        group = self.groups.get(name.lower())
        if group is None:
            raise not_found("Group not found")
        return group

    def user(self, login: int) -> User:
        user = self.users.get(login)
        if user is None:
            raise not_found("User not found")
        return user

    def add_user(
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
    ) -> User:
        grp = self.groups.get(group.lower())
        if grp is None:
            raise bad_params("Invalid group")
        if not name.strip() or len(name) > 128 or len(email) > 64:
            raise bad_params("Invalid name or email")
        if not grp.leverage_min <= leverage <= grp.leverage_max:
            raise bad_params("Invalid leverage")
        if rights is not None and rights < 0:
            raise bad_params("Invalid rights")
        if login is not None and login <= 0:
            raise bad_params("Invalid login")
        check_password_policy(password_main)
        check_password_policy(password_investor)
        if login is None:
            while self.next_login in self.users:
                self.next_login += 1
            login = self.next_login
            self.next_login += 1
        elif login in self.users:
            raise SimError(3004, "User already exists")
        user = User(
            login=login,
            group=grp.name,
            name=name,
            email=email,
            leverage=leverage,
            rights=RIGHTS_DEFAULT if rights is None else rights,
            registration=self.now_msc() // 1000,
            password_main=password_digest(password_main),
            password_investor=password_digest(password_investor),
        )
        self.users[login] = user
        self.changes += 1
        return user

    def update_user(
        self,
        login: int,
        *,
        group: str | None = None,
        leverage: int | None = None,
        rights: int | None = None,
        name: str | None = None,
        email: str | None = None,
    ) -> User:
        user = self.user(login)
        grp = self.group(user.group)
        if group is not None:
            found = self.groups.get(group.lower())
            if found is None:
                raise bad_params("Invalid group")
            grp = found
        new_leverage = user.leverage if leverage is None else leverage
        if not grp.leverage_min <= new_leverage <= grp.leverage_max:
            raise bad_params("Invalid leverage")
        if rights is not None and rights < 0:
            raise bad_params("Invalid rights")
        if name is not None and (not name.strip() or len(name) > 128):
            raise bad_params("Invalid name")
        user.group = grp.name
        user.leverage = new_leverage
        if rights is not None:
            user.rights = rights
        if name is not None:
            user.name = name
        if email is not None:
            user.email = email
        self.changes += 1
        return user

    def select_users(self, logins: Iterable[int] | None, mask: str | None) -> list[User]:
        """Existing users among ``logins`` and/or in groups matching ``mask``."""
        matches = group_matcher(mask) if mask else None
        if logins is not None:
            found = (self.users.get(x) for x in dict.fromkeys(logins))
            return [u for u in found if u is not None and (matches is None or matches(u.group))]
        if matches is None:
            raise bad_params("Specify logins or a group mask")
        return [u for u in self.users.values() if matches(u.group)]

    # -- accounts ----------------------------------------------------------------------

    def position_valuation(self, position: Position, currency: str) -> tuple[Decimal, Decimal]:
        """(current price, floating profit in ``currency``, unrounded)."""
        symbol = self.feed.symbols[position.symbol]
        quote = self.feed.quote(position.symbol)
        current = quote.bid if position.action == BUY else quote.ask
        direction = 1 if position.action == BUY else -1
        raw = (current - position.price_open) * direction * lots_of(position.volume_ext)
        profit = self.feed.convert(raw * symbol.contract_size, symbol.quote, currency)
        return current, profit

    def margin_required(
        self, symbol_name: str, volume_ext: int, leverage: int, currency: str
    ) -> Decimal:
        symbol = self.feed.symbols[symbol_name]
        notional = lots_of(volume_ext) * symbol.contract_size
        if symbol.forex:
            return self.feed.convert(notional / leverage, symbol.base, currency)
        price = self.feed.quote(symbol_name).mid
        return self.feed.convert(notional * price / leverage, symbol.quote, currency)

    def account(self, user: User) -> AccountState:
        group = self.group(user.group)
        digits = group.currency_digits
        profit = storage = margin = Decimal(0)
        for position in self.positions_by_login.get(user.login, {}).values():
            profit += self.position_valuation(position, group.currency)[1]
            storage += position.storage
            margin += self.margin_required(
                position.symbol, position.volume_ext, user.leverage, group.currency
            )
        profit, margin = money(profit, digits), money(margin, digits)
        equity = user.balance + user.credit + profit + storage
        level = money(equity / margin * 100, 2) if margin else Decimal("0.00")
        return AccountState(
            login=user.login,
            currency=group.currency,
            currency_digits=digits,
            leverage=user.leverage,
            balance=user.balance,
            credit=user.credit,
            profit=profit,
            storage=storage,
            equity=equity,
            margin=margin,
            margin_free=equity - margin,
            margin_level=level,
        )

    # -- money -------------------------------------------------------------------------

    def balance_operation(
        self, login: int, kind: int, amount: Decimal, comment: str, *, check_margin: bool
    ) -> Deal:
        """``trade/balance``: a BALANCE (2) or CREDIT (3) deal of a signed ``amount``."""
        user = self.user(login)
        group = self.group(user.group)
        if kind not in (BALANCE, CREDIT):
            raise bad_params("Invalid operation type")
        exponent = amount.as_tuple().exponent
        if (
            not amount.is_finite()
            or amount == 0
            or not isinstance(exponent, int)
            or -exponent > group.currency_digits
        ):
            raise bad_params("Invalid amount")
        if len(comment) > MAX_COMMENT:
            raise bad_params("Comment too long")
        if amount < 0:
            if kind == BALANCE and user.withdrawal_disabled:
                raise SimError(8, "Not enough permissions")
            if kind == CREDIT and -amount > user.credit:
                raise SimError(10019, "No money")
            if check_margin and -amount > self.account(user).margin_free:
                raise SimError(10019, "No money")
        deal = Deal(
            deal=self._ticket(),
            login=login,
            action=kind,
            entry=ENTRY_IN,
            symbol="",
            volume_ext=0,
            price=Decimal(0),
            profit=amount,
            commission=Decimal(0),
            time_msc=self.now_msc(),
            position_id=0,
            comment=comment,
            digits=0,
        )
        if kind == BALANCE:
            user.balance += amount
        else:
            user.credit += amount
        self.record_deal(deal)
        return deal

    # -- trading -----------------------------------------------------------------------

    def open_position(
        self, login: int, symbol_name: str, action: int, volume_ext: int, comment: str = ""
    ) -> Deal:
        """A market deal IN: a new position at the current ask (buy) or bid (sell)."""
        user = self.user(login)
        if user.trade_disabled:
            raise SimError(10017, "Trade disabled")
        symbol = self.feed.symbol(symbol_name)
        if symbol is None or action not in (BUY, SELL) or volume_ext <= 0:
            raise bad_params("Invalid symbol, action or volume")
        if len(comment) > MAX_COMMENT:
            raise bad_params("Comment too long")
        group = self.group(user.group)
        account = self.account(user)
        needed = self.margin_required(symbol_name, volume_ext, user.leverage, group.currency)
        commission = -money(group.commission_per_lot * lots_of(volume_ext), group.currency_digits)
        if account.margin_free + commission - needed < 0:
            raise SimError(10019, "No money")
        quote = self.feed.quote(symbol_name)
        price = quote.ask if action == BUY else quote.bid
        ticket = self._ticket()
        now = self.now_msc()
        position = Position(ticket, login, symbol_name, action, volume_ext, price, now)
        deal = Deal(
            deal=ticket,
            login=login,
            action=action,
            entry=ENTRY_IN,
            symbol=symbol_name,
            volume_ext=volume_ext,
            price=price,
            profit=Decimal(0),
            commission=commission,
            time_msc=now,
            position_id=ticket,
            comment=comment,
            contract_size=symbol.contract_size,
            digits=symbol.digits,
        )
        user.balance += commission
        self.insert_position(position)
        self.record_deal(deal)
        return deal

    def close_position(self, position_id: int, comment: str = "", *, forced: bool = False) -> Deal:
        """A market deal OUT closing the whole position with its realised profit."""
        position = self.positions.get(position_id)
        if position is None:
            raise not_found("Position not found")
        user = self.user(position.login)
        if user.trade_disabled and not forced:
            raise SimError(10017, "Trade disabled")
        group = self.group(user.group)
        symbol = self.feed.symbols[position.symbol]
        price, profit = self.position_valuation(position, group.currency)
        profit = money(profit, group.currency_digits)
        commission = -money(
            group.commission_per_lot * lots_of(position.volume_ext), group.currency_digits
        )
        deal = Deal(
            deal=self._ticket(),
            login=position.login,
            action=SELL if position.action == BUY else BUY,
            entry=ENTRY_OUT,
            symbol=position.symbol,
            volume_ext=position.volume_ext,
            price=price,
            profit=profit,
            commission=commission,
            time_msc=self.now_msc(),
            position_id=position.position,
            comment=comment[:MAX_COMMENT],
            contract_size=symbol.contract_size,
            digits=symbol.digits,
            storage=position.storage,
        )
        user.balance += profit + commission + position.storage
        del self.positions[position_id]
        by_login = self.positions_by_login[position.login]
        del by_login[position_id]
        if not by_login:
            del self.positions_by_login[position.login]
        self.record_deal(deal)
        return deal

    def enforce_stop_out(self) -> list[Deal]:
        """Close the worst position of every account below its group's stop-out level,
        one at a time, until it is back above it (MT5's stop-out)."""
        closed: list[Deal] = []
        for login in list(self.positions_by_login):
            user = self.users[login]
            group = self.group(user.group)
            account = self.account(user)
            while account.margin > 0 and account.margin_level < group.stop_out:
                worst = min(
                    self.positions_by_login[login].values(),
                    key=lambda p: self.position_valuation(p, group.currency)[1],
                )
                closed.append(
                    self.close_position(
                        worst.position, f"[so {account.margin_level}%]", forced=True
                    )
                )
                account = self.account(user)
        return closed

    # -- storage and queries -----------------------------------------------------------

    def insert_position(self, position: Position) -> None:
        self.positions[position.position] = position
        self.positions_by_login.setdefault(position.login, {})[position.position] = position
        self.changes += 1

    def record_deal(self, deal: Deal) -> None:
        """Append a deal (tickets and times must not go backwards) to every index."""
        if self.deals and (
            deal.deal <= self.deals[-1].deal or deal.time_msc < self.deals[-1].time_msc
        ):
            raise ValueError("deals must be recorded in ticket and time order")
        self.deals.append(deal)
        self._deal_times.append(deal.time_msc)
        self._login_deals.setdefault(deal.login, []).append(deal)
        self._login_times.setdefault(deal.login, []).append(deal.time_msc)
        self.next_ticket = max(self.next_ticket, deal.deal + 1)
        self.last_time_msc = max(self.last_time_msc, deal.time_msc)
        self.changes += 1

    def deals_between(
        self, from_msc: int, to_msc: int, logins: Iterable[int] | None, mask: str | None
    ) -> list[Deal]:
        """Deals with ``from_msc <= time <= to_msc`` of ``logins`` and/or group ``mask``,
        in ticket order."""
        matches = group_matcher(mask) if mask else None

        def in_group(deal: Deal) -> bool:
            user = self.users.get(deal.login)
            return matches is None or (user is not None and matches(user.group))

        if logins is not None:
            found: list[Deal] = []
            for login in dict.fromkeys(logins):
                times = self._login_times.get(login)
                if times:
                    lo, hi = bisect_left(times, from_msc), bisect_right(times, to_msc)
                    found.extend(self._login_deals[login][lo:hi])
            found.sort(key=lambda d: d.deal)
            return [d for d in found if in_group(d)] if matches else found
        if matches is None:
            raise bad_params("Specify logins or a group mask")
        lo, hi = bisect_left(self._deal_times, from_msc), bisect_right(self._deal_times, to_msc)
        return [d for d in self.deals[lo:hi] if in_group(d)]

    def positions_of(self, logins: Iterable[int] | None, mask: str | None) -> list[Position]:
        users = self.select_users(logins, mask)
        return [
            p
            for u in users
            for p in sorted(self.positions_by_login.get(u.login, {}).values(), key=_by_id)
        ]


def _by_id(position: Position) -> int:
    return position.position
