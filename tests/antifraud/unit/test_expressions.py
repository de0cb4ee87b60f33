"""The condition language: parsing, type checks, validation messages and evaluation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pipworks_antifraud.domain.expressions import (
    AggregateRef,
    ExpressionError,
    compile_condition,
    parse,
)
from pipworks_antifraud.domain.rules import SCHEMA


class Scope:
    def __init__(self, fields: dict[str, Any], aggregates: dict[str, Decimal] | None = None):
        self.fields = fields
        self.aggregates = aggregates or {}

    def field(self, name: str) -> Any:
        return self.fields[name]

    def aggregate(self, ref: AggregateRef) -> Decimal:
        return self.aggregates[ref.render()]

    def baseline(self, function: str, metric: str) -> Decimal:
        return Decimal(7)


def check(source: str, scope: Scope) -> bool:
    return compile_condition(source, SCHEMA).evaluate(scope)


def test_precedence_and_arithmetic() -> None:
    scope = Scope({"event.amount": Decimal(100), "event.currency": "EUR"})
    assert check("event.amount > 50 and event.currency == 'EUR' or false", scope)
    assert check("not event.amount < 50 and (event.amount - 10) * 2 == 180", scope)
    assert not check("event.amount / 0 > 0", scope)  # division by zero is zero
    assert check('event.currency in ["USD", "EUR"]', scope)
    assert check("-event.amount < 0 and abs(-3) == 3 and max(1, 2) == 2", scope)


def test_limit_for_picks_the_currency_or_the_default() -> None:
    source = 'event.amount >= limit_for(event.currency, "USD=100 EUR=90 *=50")'
    assert check(source, Scope({"event.amount": Decimal(95), "event.currency": "EUR"}))
    assert not check(source, Scope({"event.amount": Decimal(95), "event.currency": "USD"}))
    assert check(source, Scope({"event.amount": Decimal(60), "event.currency": "XAU"}))


def test_aggregates_are_collected_with_windows_and_filters() -> None:
    condition = compile_condition(
        "count(deposit, 24h, amount >= 9000) >= 3 and sum(withdrawal, 7d) > 0", SCHEMA
    )
    refs = {ref.render(): ref for ref in condition.aggregates}
    assert set(refs) == {"count(deposit, 1d, (amount >= 9000))", "sum(withdrawal, 7d)"}
    assert refs["sum(withdrawal, 7d)"].window_seconds == 7 * 86400
    filt = refs["count(deposit, 1d, (amount >= 9000))"].filter
    assert filt is not None
    assert filt({"amount": Decimal(9500)})
    assert not filt({"amount": Decimal(10)})
    scope = Scope(
        {}, {"count(deposit, 1d, (amount >= 9000))": Decimal(3), "sum(withdrawal, 7d)": Decimal(1)}
    )
    assert condition.evaluate(scope)
    assert condition.explain(scope) == {
        "count(deposit, 1d, (amount >= 9000))": "3",
        "sum(withdrawal, 7d)": "1",
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("event.amount >", "unexpected the end"),
        ("event.amount >= 10 and", "unexpected the end"),
        ("event.amonut > 1", "unknown field 'event.amonut'"),
        ("count(deposit, 0h) > 1", "window must be greater than zero"),
        ("count(deposit, 24) > 1", "window must be a duration"),
        ("count(deposits, 24h) > 1", "unknown measure deposits"),
        ("count(deposit, 24h, amout > 1) > 1", "unknown field 'amout'"),
        ("event.amount > 'x'", "compares a number with a string"),
        ("event.amount", "must be a condition"),
        ("frobnicate(1) > 0", "unknown function 'frobnicate'"),
        ("baseline(colour) > 1", "unknown baseline metric"),
        ("event.amount > 1 $", "unexpected character"),
        ("", "is empty"),
        ("__import__('os')", "unknown function '__import__'"),
    ],
)
def test_bad_conditions_are_refused_with_the_reason(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        compile_condition(source, SCHEMA)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("(" * 100 + "true" + ")" * 100)
