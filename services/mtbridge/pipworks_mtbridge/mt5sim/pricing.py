"""Symbols and a seeded random-walk price feed, with currency conversion."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["DEFAULT_SYMBOLS", "PriceFeed", "Quote", "Symbol"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A tradable instrument: ``base``/``quote`` currencies (profit is in ``quote``),
    contract size per lot, price digits, spread in points, and per-step volatility."""

    name: str
    base: str
    quote: str
    contract_size: Decimal
    digits: int
    spread_points: int
    start: Decimal
    volatility: float
    forex: bool

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    def round(self, price: Decimal) -> Decimal:
        return price.quantize(self.point, rounding=ROUND_HALF_UP)


DEFAULT_SYMBOLS: tuple[Symbol, ...] = (
    Symbol("EURUSD", "EUR", "USD", Decimal(100_000), 5, 10, Decimal("1.08500"), 0.0002, True),
    Symbol("GBPUSD", "GBP", "USD", Decimal(100_000), 5, 14, Decimal("1.27000"), 0.0002, True),
    Symbol("USDJPY", "USD", "JPY", Decimal(100_000), 3, 12, Decimal("150.000"), 0.0002, True),
    Symbol("XAUUSD", "XAU", "USD", Decimal(100), 2, 30, Decimal("2350.00"), 0.0004, False),
    Symbol("US30", "USD", "USD", Decimal(1), 1, 20, Decimal("39000.0"), 0.0003, False),
    Symbol("BTCUSD", "BTC", "USD", Decimal(1), 2, 2000, Decimal("65000.00"), 0.0008, False),
)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class PriceFeed:
    """Bid prices that move by a seeded Gaussian random walk; ask = bid + spread."""

    def __init__(self, rng: random.Random, symbols: tuple[Symbol, ...] = DEFAULT_SYMBOLS) -> None:
        self._rng = rng
        self.symbols = {s.name: s for s in symbols}
        self._bids = {s.name: s.start for s in symbols}

    def symbol(self, name: str) -> Symbol | None:
        return self.symbols.get(name)

    def quote(self, name: str) -> Quote:
        symbol = self.symbols[name]
        bid = self._bids[name]
        return Quote(bid, bid + symbol.point * symbol.spread_points)

    def step(self, steps: int = 1) -> None:
        """Advance every symbol ``steps`` random-walk steps."""
        for _ in range(steps):
            for name, symbol in self.symbols.items():
                change = Decimal(repr(round(self._rng.gauss(0.0, symbol.volatility), 10)))
                bid = symbol.round(self._bids[name] * (1 + change))
                self._bids[name] = max(bid, symbol.point)

    def set_bid(self, name: str, bid: Decimal) -> None:
        symbol = self.symbols[name]
        if bid <= 0:
            raise ValueError("a price must be positive")
        self._bids[name] = symbol.round(bid)

    def bids(self) -> dict[str, Decimal]:
        return dict(self._bids)

    def load_bids(self, bids: dict[str, str]) -> None:
        for name, value in bids.items():
            if name in self.symbols:
                self._bids[name] = Decimal(value)

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal:
        """``amount`` in currency ``source`` expressed in ``target`` at mid prices
        (directly, inverted, or through USD); unknown pairs convert 1:1."""
        if source == target or amount == 0:
            return amount
        rate = self._rate(source, target)
        if rate is None:
            via_a, via_b = self._rate(source, "USD"), self._rate("USD", target)
            rate = via_a * via_b if via_a is not None and via_b is not None else Decimal(1)
        return amount * rate

    def _rate(self, source: str, target: str) -> Decimal | None:
        if source == target:
            return Decimal(1)
        for symbol in self.symbols.values():
            if symbol.base == source and symbol.quote == target:
                return self.quote(symbol.name).mid
            if symbol.base == target and symbol.quote == source:
                return 1 / self.quote(symbol.name).mid
        return None
