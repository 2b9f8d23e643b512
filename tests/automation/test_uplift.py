"""Uplift intervals cover the truth about 95% of the time; the report measures treated vs hold-out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.automation.uplift import cuped_uplift, proportion_uplift, welch_uplift
from kizuna.bootstrap import Context
from kizuna.errors import ValidationError
from kizuna.services import journeys, measures
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t


def test_proportion_interval_covers_a_known_effect_about_95_percent() -> None:
    rng = random.Random(5)
    p_c, effect, n, trials = 0.10, 0.03, 1500, 400
    covered = 0
    for _ in range(trials):
        conv_t = sum(rng.random() < p_c + effect for _ in range(n))
        conv_c = sum(rng.random() < p_c for _ in range(n))
        covered += proportion_uplift(conv_t, n, conv_c, n).covers(effect)
    assert 0.92 <= covered / trials <= 0.98


def test_welch_interval_covers_a_known_revenue_effect_about_95_percent() -> None:
    rng = random.Random(7)
    covered, trials = 0, 400
    for _ in range(trials):
        # Skewed revenue, different variances and sizes in the two groups.
        treated = [rng.expovariate(1 / 1200) for _ in range(300)]
        control = [rng.expovariate(1 / 1000) for _ in range(120)]
        covered += welch_uplift(treated, control).covers(200.0)
    assert 0.92 <= covered / trials <= 0.98


def test_cuped_covers_the_effect_about_95_percent_with_a_narrower_interval() -> None:
    rng = random.Random(11)
    covered, narrower, trials, effect = 0, 0, 400, 150.0
    for _ in range(trials):
        # Spend this month follows spend last month (rho about 0.8); the campaign adds 150.
        before_t = [rng.gammavariate(2, 500) for _ in range(400)]
        before_c = [rng.gammavariate(2, 500) for _ in range(200)]
        treated = [0.8 * x + rng.gauss(200, 300) + effect for x in before_t]
        control = [0.8 * x + rng.gauss(200, 300) for x in before_c]
        adjusted = cuped_uplift(treated, control, before_t, before_c)
        plain = welch_uplift(treated, control)
        covered += adjusted.covers(effect)
        narrower += (adjusted.high - adjusted.low) < 0.8 * (plain.high - plain.low)
    assert 0.92 <= covered / trials <= 0.98
    assert narrower == trials


def test_report_gives_each_ab_variant_its_own_interval_against_the_holdout(
    workspace: Context,
) -> None:
    uow = UnitOfWork(workspace.engine, workspace.settings)
    doc = {"name": "ab", "trigger": {"segment_entry": "x"}, "steps": [{"id": "end", "exit": True}]}
    journeys.handle_save(journeys.SaveJourney(doc), uow)
    start = datetime(2025, 5, 1, tzinfo=UTC)
    with workspace.engine.begin() as conn:
        jid = conn.execute(sa.select(at.journeys.c.id)).scalar_one()
        for n in range(90):
            group = ("a", "b", None)[n % 3]
            cid = add(conn, t.customers, external_id=f"ab{n}")
            add(conn, at.journey_runs, customer_id=cid, journey_id=jid, instance_key=f"k{n}",
                status="completed", holdout=group is None, variant=group, started_at=start)  # fmt: skip
            # a converts 20/30, b 10/30, hold-out 5/30; everyone bought 300 before.
            buys = n // 3 < {"a": 20, "b": 10, None: 5}[group]
            add(conn, t.orders, external_id=f"pre{n}", customer_id=cid,
                ordered_at=start - timedelta(days=5), total_amount=300)  # fmt: skip
            if buys:
                add(conn, t.orders, external_id=f"o{n}", customer_id=cid,
                    ordered_at=start + timedelta(days=3), total_amount=1000)  # fmt: skip
    rep = measures.report("ab", uow)
    conv_a, rev_a = rep.variant_uplift["a"]
    conv_b, _ = rep.variant_uplift["b"]
    assert conv_a.estimate == pytest.approx(20 / 30 - 5 / 30)
    assert conv_b.estimate == pytest.approx(10 / 30 - 5 / 30)
    assert conv_a.low > 0 and rev_a.estimate == pytest.approx(1000 * (20 - 5) / 30)
    assert rep.treated.revenue_before == [300.0] * 60  # the pre-period window is read
    data = measures.as_dict(rep)
    assert set(data["variants"]) == {"a", "b"}
    assert data["variants"]["b"]["conversion_uplift"]["estimate"] == pytest.approx(1 / 6)


def test_report_measures_treated_against_holdout_and_checks_the_target(workspace: Context) -> None:
    uow = UnitOfWork(workspace.engine, workspace.settings)
    doc = {"name": "winback", "goal": {"purchase_within_days": 14}, "trigger": {"segment_entry": "x"},
           "steps": [{"id": "end", "exit": True}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow)
    with pytest.raises(ValidationError):
        measures.handle_set(measures.SetMeasure("winback", "more buyers", "clicks", 1), uow)
    measures.handle_set(
        measures.SetMeasure(
            "winback", "Win back 5 pt more lapsed buyers", "conversion_uplift", 0.05
        ),
        uow,
    )
    start = datetime(2025, 5, 1, tzinfo=UTC)
    with workspace.engine.begin() as conn:
        jid = conn.execute(sa.select(at.journeys.c.id)).scalar_one()
        for n in range(40):
            holdout = n >= 30  # 30 treated, 10 hold-out
            cid = add(conn, t.customers, external_id=f"w{n}")
            add(conn, at.journey_runs, customer_id=cid, journey_id=jid, instance_key=f"k{n}", status="completed",
                holdout=holdout, started_at=start)  # fmt: skip
            buys = (n < 15) if not holdout else (n < 32)  # treated 15/30, hold-out 2/10
            if buys:
                add(conn, t.orders, external_id=f"o{n}", customer_id=cid, ordered_at=start + timedelta(days=3),
                    total_amount=1000)  # fmt: skip
            if n == 16:  # outside the 14-day window: not a conversion
                add(conn, t.orders, external_id=f"late{n}", customer_id=cid, ordered_at=start + timedelta(days=20),
                    total_amount=5000)  # fmt: skip
    rep = measures.report("winback", uow)
    assert (rep.treated.customers, rep.treated.conversions) == (30, 15)
    assert (rep.holdout.customers, rep.holdout.conversions) == (10, 2)
    assert rep.conversion_uplift.estimate == pytest.approx(0.5 - 0.2)
    assert rep.revenue_uplift.estimate == pytest.approx(500 - 200)
    assert rep.conversion_uplift.low < 0.3 < rep.conversion_uplift.high
    assert rep.objective == "Win back 5 pt more lapsed buyers" and rep.achieved is (
        rep.conversion_uplift.low > 0
    )
