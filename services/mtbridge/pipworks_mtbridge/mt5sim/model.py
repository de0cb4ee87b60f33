"""The simulator's records and its error type (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "BALANCE",
    "BUY",
    "CREDIT",
    "ENTRY_IN",
    "ENTRY_OUT",
    "RIGHTS_DEFAULT",
    "RIGHT_ENABLED",
    "RIGHT_TRADE_DISABLED",
    "RIGHT_WITHDRAWAL_DISABLED",
    "SELL",
    "Deal",
    "Group",
    "Position",
    "SimError",
    "User",
    "bad_params",
    "money",
    "not_found",
]

# MT5 USER_RIGHT_* flags, plus the Pipworks withdrawal block in bit 32.
RIGHT_ENABLED = 0x1
RIGHT_PASSWORD = 0x2
RIGHT_TRADE_DISABLED = 0x4
RIGHT_TRAILING = 0x20
RIGHT_EXPERT = 0x40
RIGHT_REPORTS = 0x100
RIGHT_WITHDRAWAL_DISABLED = 0x1_0000_0000
RIGHTS_DEFAULT = RIGHT_ENABLED | RIGHT_PASSWORD | RIGHT_TRAILING | RIGHT_EXPERT | RIGHT_REPORTS

# Deal actions and entries used by the simulator.
BUY, SELL, BALANCE, CREDIT = 0, 1, 2, 3
ENTRY_IN, ENTRY_OUT = 0, 1


class SimError(Exception):
    """A request the simulated server refuses: becomes ``{"retcode": "<code> <message>"}``."""

    def __init__(self, retcode: int, message: str) -> None:
        super().__init__(f"{retcode} {message}")
        self.retcode = retcode
        self.message = message

    @property
    def text(self) -> str:
        return f"{self.retcode} {self.message}"


def bad_params(detail: str = "Invalid parameters") -> SimError:
    return SimError(3, detail)


def not_found(detail: str = "Not found") -> SimError:
    return SimError(13, detail)


def money(value: Decimal, digits: int) -> Decimal:
    """``value`` rounded half-up to ``digits`` decimals."""
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class Group:
    name: str
    currency: str = "USD"
    currency_digits: int = 2
    leverage_min: int = 1
    leverage_max: int = 500
    margin_call: Decimal = Decimal(100)
    stop_out: Decimal = Decimal(50)
    commission_per_lot: Decimal = Decimal(0)  # charged (negative) on every trade deal


@dataclass(slots=True)
class User:
    login: int
    group: str
    name: str
    email: str
    leverage: int
    rights: int
    registration: int  # Unix seconds
    password_main: str  # hex of an MD5 digest: the simulator never keeps plaintext
    password_investor: str
    balance: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    last_access: int = 0

    @property
    def trade_disabled(self) -> bool:
        return bool(self.rights & RIGHT_TRADE_DISABLED) or not self.rights & RIGHT_ENABLED

    @property
    def withdrawal_disabled(self) -> bool:
        return bool(self.rights & RIGHT_WITHDRAWAL_DISABLED)


@dataclass(slots=True)
class Position:
    position: int
    login: int
    symbol: str
    action: int  # 0 buy, 1 sell
    volume_ext: int
    price_open: Decimal
    time_msc: int
    storage: Decimal = Decimal(0)


@dataclass(slots=True)
class Deal:
    deal: int
    login: int
    action: int
    entry: int
    symbol: str
    volume_ext: int
    price: Decimal
    profit: Decimal
    commission: Decimal
    time_msc: int
    position_id: int
    comment: str
    contract_size: Decimal = Decimal(0)
    digits: int = 0
    storage: Decimal = Decimal(0)
