"""Next-best-offer rules as pure functions: expected value, eligibility, caps, budgets, reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kizuna.domain.offers import Facts, Offer, Rules, Usage, assess, assign, best, rank
from kizuna.errors import ValidationError

GRINDER = Offer(1, "GRINDER", "ミル 10% off", "coupon", margin=3_000, cost=500,
                rules=Rules(bought_any=("P0001",), not_bought=("P0100",)))  # fmt: skip
TEA = Offer(2, "TEA", "紅茶のご案内", "content", margin=800)
VIP = Offer(3, "VIP", "VIP lounge", "reward", margin=10_000, rules=Rules(tiers=("gold",)))


def facts(cid: int = 1, p: float | None = 0.5, **kw: object) -> Facts:
    return Facts(customer_id=cid, propensity=p, **kw)  # type: ignore[arg-type]


def test_ranking_follows_expected_value_and_explains_itself() -> None:
    f = facts(p=0.4, bought=frozenset({"P0001"}), tier="silver")
    ranked = rank([TEA, GRINDER, VIP], f, {})
    assert [c.offer.code for c in ranked] == ["GRINDER", "TEA", "VIP"]
    assert [c.eligible for c in ranked] == [True, True, False]
    assert ranked[0].expected_value == pytest.approx(0.4 * 3_000)
    assert "bought P0001" in ranked[0].reasons
    assert "has not bought P0100 yet" in ranked[0].reasons
    assert any("expected value 1,200" in r for r in ranked[0].reasons)
    assert any("tier silver is not among gold" in r for r in ranked[2].reasons)


def test_bought_a_not_yet_b_targets_only_the_gap() -> None:
    assert not assess(GRINDER, facts(bought=frozenset()), Usage()).eligible
    has_both = assess(GRINDER, facts(bought=frozenset({"P0001", "P0100"})), Usage())
    assert not has_both.eligible and "already bought P0100" in has_both.reasons
    assert best([GRINDER], facts(bought=frozenset({"P0001"})), {}) is not None


def test_caps_and_budget_block_with_a_reason() -> None:
    capped = Offer(4, "CAP", "cap", "content", margin=100, max_total=2, max_per_customer=1)
    f = facts(cid=7)
    assert (
        "already offered 1 of at most 1 times"
        in assess(capped, f, Usage(per_customer={7: 1})).reasons
    )
    assert any("total cap reached" in r for r in assess(capped, f, Usage(assigned=2)).reasons)
    budgeted = Offer(5, "B", "b", "coupon", margin=100, cost=300, budget=1_000)
    blocked = assess(budgeted, f, Usage(spent=800))
    assert not blocked.eligible and any("budget exhausted" in r for r in blocked.reasons)
    none = assess(TEA, facts(p=None), Usage())
    assert not none.eligible and any("kizuna score" in r for r in none.reasons)


@given(
    props=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    budget=st.integers(0, 5_000),
    max_total=st.integers(0, 40),
)
def test_batch_assignment_never_exceeds_caps_or_budgets(
    props: list[float], budget: int, max_total: int
) -> None:
    a = Offer(1, "A", "a", "coupon", margin=1_000, cost=300, budget=budget)
    b = Offer(2, "B", "b", "content", margin=400, max_total=max_total)
    people = [facts(cid=i, p=p) for i, p in enumerate(props)]
    usage: dict[int, Usage] = {}
    out = assign([a, b], people, usage)
    got = [c.offer.code for _, c in out]
    assert got.count("A") * 300 <= budget and got.count("B") <= max_total
    assert len({f.customer_id for f, _ in out}) == len(out)  # one offer per customer
    assert usage[1].spent == 300 * got.count("A") and usage[2].assigned == got.count("B")
    # The budget goes to the highest expected values first.
    if got.count("A"):
        winners = sorted(p for (f, c) in out if c.offer.code == "A" for p in [f.propensity or 0])
        losers = [
            f.propensity or 0
            for f in people
            if f.customer_id not in {x.customer_id for x, _ in out}
        ]
        assert not losers or min(winners) >= max(losers) or got.count("A") * 300 + 300 <= budget


def test_bad_rules_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="unknown rule 'bougth'"):
        Rules.parse({"bougth": ["P1"]})
    with pytest.raises(ValidationError, match="min_propensity must be a number from 0 to 1"):
        Rules.parse({"min_propensity": 2})
    with pytest.raises(ValidationError, match="kind must be one of"):
        Offer(9, "X", "x", "voucher", margin=1)
