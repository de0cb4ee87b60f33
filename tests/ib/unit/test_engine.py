"""The commission engine and plan validation, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipworks_ib.domain.engine import (
    ENTRY_IN,
    ENTRY_OUT,
    ChainLink,
    DealFact,
    Opening,
    explain,
    price_cpa,
    price_deal,
    price_revenue_share,
)
from pipworks_ib.domain.money import quantize
from pipworks_ib.domain.plans import (
    BeyondLastLevel,
    Distribution,
    PlanVersion,
    Rule,
    RuleKind,
    Share,
    check_new_version,
    in_force,
    validate_terms,
)
from pipworks_ib.domain.tree import check_move
from pipworks_platform.errors import FailedPrecondition, InvalidArgument
from tests.ib.plans_fixture import reference_deal, ten_level_terms

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CLIENT = "00000000-0000-0000-0000-00000000c11e"


def chain(n: int) -> list[ChainLink]:
    return [ChainLink(f"p{i}", f"u{i}") for i in range(1, n + 1)]


def plan(**overrides: object) -> PlanVersion:
    return PlanVersion("std", 1, T0 - timedelta(days=30), ten_level_terms(**overrides))


def deal(
    *,
    entry: int = ENTRY_OUT,
    symbol: str = "EURUSD",
    volume: str = "1.30",
    commission: str = "-4.55",
    at: datetime = T0,
    client: str = CLIENT,
    currency: str = "USD",
) -> DealFact:
    return DealFact(
        server="mt5-live",
        ticket=1001,
        login=500,
        client_user_id=client,
        position_id=77,
        entry=entry,
        symbol=symbol,
        volume=Decimal(volume),
        price=Decimal("1.1"),
        commission=Decimal(commission),
        profit=Decimal(0),
        swap=Decimal(0),
        executed_at=at,
        currency=currency,
    )


OPENED = Opening(T0 - timedelta(minutes=5), Decimal("1.30"), Decimal("-4.55"))


def amounts(pricing) -> set[tuple[str, int, str, Decimal]]:
    return {(a.partner_id, a.level, a.rule_id, a.amount) for a in pricing.accruals}


def test_a_closing_deal_pays_the_whole_ten_level_chain_as_the_reference_does() -> None:
    links = chain(12)
    priced = price_deal(plan(), deal(), links, OPENED)
    expected = reference_deal(
        [link.partner_id for link in links],
        "EURUSD",
        Decimal("1.30"),
        Decimal("-4.55"),
        Decimal("-4.55"),
    )
    assert amounts(priced) == {(e.partner_id, e.level, e.rule_id, e.amount) for e in expected}
    assert {a.level for a in priced.accruals} == set(range(1, 11))  # levels 11, 12: nothing


def test_the_explanation_shows_the_chain_up_to_the_partner_and_the_numbers() -> None:
    priced = price_deal(plan(), deal(), chain(3), OPENED)
    row = next(a for a in priced.accruals if a.level == 2 and a.rule_id == "fx-lot")
    assert row.amount == Decimal("1.82")  # 1.3 lots x 7 = 9.10; 20% = 1.82
    full = explain(priced.facts, row.rule_id, row.level, row.explanation)
    assert full["chain"] == ["p1", "p2"]  # never the partners above
    assert full["pool"] == "9.10"
    assert full["computation"] == "20% of 9.10"
    assert full["deal"] == "mt5-live:1001"
    assert full["lifetime_seconds"] == 300
    assert full["kind"] == "per_lot"
    assert set(row.explanation) <= {"level", "share", "computation", "exact", "amount", "cap"}


def test_opening_deals_earn_nothing_until_the_position_closes() -> None:
    priced = price_deal(plan(), deal(entry=ENTRY_IN), chain(3), None)
    assert priced.accruals == ()
    assert priced.note == "OPENING_DEAL"


def test_positions_held_under_the_minimum_lifetime_earn_nothing() -> None:
    quick = Opening(T0 - timedelta(seconds=59), Decimal("1.30"), Decimal(0))
    assert price_deal(plan(), deal(), chain(3), quick).note == "MIN_LIFETIME"
    enough = Opening(T0 - timedelta(seconds=60), Decimal("1.30"), Decimal(0))
    assert price_deal(plan(), deal(), chain(3), enough).accruals


def test_a_close_whose_opening_was_never_seen_is_priced_and_says_so() -> None:
    priced = price_deal(plan(), deal(commission="-2"), chain(1), None)
    assert priced.accruals
    assert "opening not seen" in priced.facts["lifetime"]
    commission = next(a for a in priced.accruals if a.rule_id == "commission")
    assert commission.base == Decimal(2)  # closing side only


def test_a_partial_close_takes_its_share_of_the_opening_commission() -> None:
    opened = Opening(T0 - timedelta(hours=1), Decimal("2.00"), Decimal("-10"))
    priced = price_deal(plan(), deal(volume="0.50", commission="-2.5"), chain(1), opened)
    commission = next(a for a in priced.accruals if a.rule_id == "commission")
    assert commission.base == Decimal("5.0")  # 2.5 closing + 10 x 0.5/2 opening
    assert commission.amount == Decimal("0.60")  # 5 x 30% x 40%


def test_symbol_groups_select_the_per_lot_rule() -> None:
    opened = Opening(T0 - timedelta(hours=1), Decimal("1.30"), Decimal(0))
    priced = price_deal(plan(), deal(symbol="XAUUSD", commission="0"), chain(1), opened)
    assert {a.rule_id for a in priced.accruals} == {"metal-lot"}
    assert priced.accruals[0].amount == Decimal("5.98")  # 1.3 x 11.5 x 40% = 5.98


def test_an_ib_earns_nothing_from_its_own_trades_unless_the_plan_allows_it() -> None:
    links = [ChainLink("p1", CLIENT), ChainLink("p2", "u2")]
    priced = price_deal(plan(), deal(), links, OPENED)
    assert {a.partner_id for a in priced.accruals} == {"p2"}
    assert {a.level for a in priced.accruals} == {2}
    allowed = price_deal(plan(pay_own_trades=True), deal(), links, OPENED)
    assert {a.partner_id for a in allowed.accruals} == {"p1", "p2"}


def test_the_cap_per_deal_clips_in_rule_then_level_order() -> None:
    capped = plan(
        distribution=Distribution(
            tuple(Share(percent=Decimal(40)) for _ in range(2)), cap_per_deal=Decimal("5.00")
        )
    )
    priced = price_deal(capped, deal(commission="0"), chain(2), OPENED)
    assert sum(a.amount for a in priced.accruals) == Decimal("5.00")
    assert [(a.level, a.rule_id, a.amount) for a in priced.accruals] == [
        (1, "fx-lot", Decimal("3.64")),
        (2, "fx-lot", Decimal("1.36")),
    ]


def test_repeating_the_last_share_never_hands_out_more_than_the_pool() -> None:
    terms = plan(
        distribution=Distribution(
            (Share(percent=Decimal(50)), Share(percent=Decimal(20))), BeyondLastLevel.REPEAT_LAST
        ),
        rules=(Rule("fx-lot", RuleKind.PER_LOT, Decimal(10), "FX majors"),),
    )
    priced = price_deal(terms, deal(volume="1"), chain(8), OPENED)
    assert [a.amount for a in priced.accruals] == [
        Decimal("5.00"),
        Decimal("2.00"),
        Decimal("2.00"),
        Decimal("1.00"),
    ]
    assert sum(a.amount for a in priced.accruals) == Decimal(10)


def test_a_partner_override_replaces_its_level_share() -> None:
    terms = plan(overrides={"p2": Share(percent=Decimal(35))})
    priced = price_deal(terms, deal(commission="0", volume="1"), chain(2), OPENED)
    fx = {a.partner_id: a for a in priced.accruals if a.rule_id == "fx-lot"}
    assert fx["p2"].amount == Decimal("2.45")
    assert "override" in fx["p2"].explanation["share"]


def test_fixed_level_amounts_are_per_lot() -> None:
    terms = plan(
        distribution=Distribution((Share(fixed=Decimal("1.5")), Share(fixed=Decimal("0.25")))),
        rules=(Rule("fx-lot", RuleKind.PER_LOT, Decimal(10), "FX majors"),),
    )
    priced = price_deal(terms, deal(volume="2"), chain(3), OPENED)
    assert [(a.level, a.amount) for a in priced.accruals] == [
        (1, Decimal("3.00")),
        (2, Decimal("0.50")),
    ]


def test_rounding_is_half_even_once_per_row() -> None:
    assert quantize(Decimal("0.125"), "USD") == Decimal("0.12")
    assert quantize(Decimal("0.135"), "USD") == Decimal("0.14")
    assert quantize(Decimal("2.5"), "JPY") == Decimal("2")
    terms = plan(
        distribution=Distribution((Share(percent=Decimal("12.5")),)),
        rules=(Rule("fx-lot", RuleKind.PER_LOT, Decimal(1), "FX majors"),),
    )
    priced = price_deal(terms, deal(volume="1"), chain(1), OPENED)
    assert priced.accruals[0].amount == Decimal("0.12")  # 0.125 -> 0.12, not 0.13


def test_a_deal_in_another_currency_than_the_plan_earns_nothing() -> None:
    assert price_deal(plan(), deal(currency="EUR"), chain(2), OPENED).note == "CURRENCY_MISMATCH"


def test_cpa_needs_the_threshold() -> None:
    assert price_cpa(plan(), CLIENT, chain(2), Decimal("499.99"), "USD").accruals == ()
    paid = price_cpa(plan(), CLIENT, chain(2), Decimal("500"), "USD")
    assert [(a.level, a.amount) for a in paid.accruals] == [
        (1, Decimal("80.00")),
        (2, Decimal("40.00")),
    ]


def test_revenue_share_pays_on_net_loss_only() -> None:
    assert price_revenue_share(plan(), CLIENT, chain(1), Decimal(100), "2026-11").accruals == ()
    paid = price_revenue_share(plan(), CLIENT, chain(1), Decimal("-1000"), "2026-11")
    assert [a.amount for a in paid.accruals] == [Decimal("100.00")]  # 1000 x 25% x 40%


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "distribution": Distribution(
                    (Share(percent=Decimal(60)), Share(percent=Decimal(41)))
                )
            },
            "distribution.levels",
        ),
        (
            {"distribution": Distribution((Share(percent=Decimal(-1)),))},
            "distribution.levels[0].percent",
        ),
        ({"rules": (Rule("x", RuleKind.PER_LOT, Decimal(-1), "FX majors"),)}, "rules[0].rate"),
        ({"rules": (Rule("x", RuleKind.PER_LOT, Decimal(1), "Crypto"),)}, "rules[0].symbol_group"),
        ({"rules": (Rule("x", RuleKind.COMMISSION_SHARE, Decimal(101)),)}, "rules[0].rate"),
        ({"rules": ()}, "rules"),
        ({"currency": "usd"}, "currency"),
        (
            {"distribution": Distribution((Share(fixed=Decimal(1)),), BeyondLastLevel.REPEAT_LAST)},
            "distribution.cap_per_deal",
        ),
    ],
)
def test_bad_plans_are_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_terms(ten_level_terms(**change))
    assert field in {v.field for v in raised.value.violations}


def test_the_fixture_plan_is_valid() -> None:
    validate_terms(ten_level_terms())


def test_versions_never_overlap_nor_start_in_the_past() -> None:
    now = T0
    v1 = PlanVersion("std", 1, now - timedelta(days=10), ten_level_terms())
    assert check_new_version([v1], now + timedelta(days=1), now) == 2
    with pytest.raises(FailedPrecondition) as past:
        check_new_version([v1], now - timedelta(seconds=1), now)
    assert past.value.reason == "PLAN_VERSION_IN_PAST"
    v2 = PlanVersion("std", 2, now + timedelta(days=1), ten_level_terms())
    with pytest.raises(FailedPrecondition) as overlap:
        check_new_version([v1, v2], now + timedelta(hours=1), now)
    assert overlap.value.reason == "PLAN_VERSION_OVERLAP"
    assert in_force([v1, v2], now) is v1
    assert in_force([v1, v2], now + timedelta(days=2)) is v2
    assert in_force([v1, v2], now - timedelta(days=11)) is None


def test_a_partner_cannot_move_under_its_own_subtree() -> None:
    with pytest.raises(FailedPrecondition) as raised:
        check_move("a", "c", {"a", "b", "c"})
    assert raised.value.reason == "TREE_CYCLE"
    with pytest.raises(InvalidArgument):
        check_move("a", "a", {"a"})
    check_move("a", "z", {"a", "b"})
    check_move("a", None, {"a", "b"})
