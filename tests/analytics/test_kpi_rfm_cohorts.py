"""KPIs, RFM and cohorts on small hand-made data with answers worked out by hand."""

from __future__ import annotations

import math

import pytest
from tests.analytics import handmade as hm

from kizuna.analytics import cohorts, engine, kpi, loyalty, rfm, summary


def test_nps_shares_and_margin_of_error() -> None:
    data = engine.from_arrow(
        {
            "a": hm.answers(
                [(i, "nps", s, "2025-01-10") for i, s in enumerate([10, 9, 8, 7, 6, 0])]
                + [(9, "csat", 5, "2025-01-10")]
            )
        }
    )
    row = kpi.nps(data["a"]).to_pandas().iloc[0]
    # 2 promoters, 2 passives, 2 detractors: NPS 0; scores +1,+1,0,0,-1,-1 have
    # variance 4/6 - 0² = 2/3, so the margin is 1.96·100·sqrt(2/3 / 6) = 65.33.
    assert (row.responses, row.promoters, row.passives, row.detractors) == (6, 2, 2, 2)
    assert row.nps == pytest.approx(0.0)
    assert row.margin_of_error == pytest.approx(100 * 1.959963984540054 * math.sqrt(2 / 3 / 6))
    assert row.promoter_share == pytest.approx(1 / 3)


def test_nps_by_month_and_period() -> None:
    rows = [(1, "nps", 10, "2025-01-31"), (2, "nps", 0, "2025-02-01"), (3, "nps", 9, "2025-02-15")]
    data = engine.from_arrow({"a": hm.answers(rows)})
    monthly = kpi.nps(data["a"], by_month=True).to_pandas()
    assert [kpi.month_label(m) for m in monthly.month] == ["2025-01", "2025-02"]
    assert monthly.nps.tolist() == pytest.approx([100.0, 0.0])
    assert monthly.margin_of_error.iloc[0] == pytest.approx(0.0)  # one promoter: no variance
    feb = kpi.nps(
        data["a"],
        start_day=kpi.day_of(hm.date(2025, 2, 1)),
        end_day=kpi.day_of(hm.date(2025, 3, 1)),
    ).to_pandas()
    assert feb.responses.iloc[0] == 2


def test_csat_is_the_share_of_4_and_5_and_ces_the_mean() -> None:
    rows = [(1, "csat", s, "2025-01-10") for s in (5, 4, 3, 1)]
    rows += [(2, "ces", 2, "2025-01-10"), (3, "ces", 4, "2025-01-10"), (4, "nps", 10, "2025-01-10")]
    data = engine.from_arrow({"a": hm.answers(rows)})
    row = kpi.csat_ces(data["a"]).to_pandas().iloc[0]
    assert row.csat == pytest.approx(0.5)
    assert row.ces == pytest.approx(3.0)
    assert (row.csat_responses, row.ces_responses) == (4, 2)


def test_repeat_rate_counts_purchases_before_the_period() -> None:
    o = hm.orders(
        [
            (1, "2025-01-05", 100), (1, "2025-01-20", 100),  # two in the period
            (2, "2024-11-05", 100), (2, "2025-01-07", 100),  # one before, one in
            (3, "2025-01-09", 100),                          # first purchase in it
            (4, "2024-10-01", 100),                          # not in the period
        ]
    )  # fmt: skip
    data = engine.from_arrow({"o": o})
    row = (
        kpi.repeat_rate(
            data["o"],
            start_day=kpi.day_of(hm.date(2025, 1, 1)),
            end_day=kpi.day_of(hm.date(2025, 2, 1)),
        )
        .to_pandas()
        .iloc[0]
    )
    assert (row.buyers, row.repeat_buyers) == (3, 2)
    assert row.repeat_rate == pytest.approx(2 / 3)


def test_retention_and_churn_with_a_no_purchase_window() -> None:
    o = hm.orders(
        [
            (1, "2024-12-15", 100), (1, "2025-01-20", 100),  # active at both edges: retained
            (2, "2024-12-20", 100),                          # active on 1 Jan, lapsed by 1 Feb
            (3, "2025-01-10", 100),                          # new in January: not in the base
            (4, "2024-10-01", 100),                          # lapsed before January
        ]
    )  # fmt: skip
    data = engine.from_arrow({"o": o})
    jan = hm.month_of(hm.date(2025, 1, 1))
    row = kpi.retention(data["o"], months=[jan], window_days=30).to_pandas().iloc[0]
    assert (row.month, row.active_start, row.retained) == (jan, 2, 1)
    assert row.retention_rate == pytest.approx(0.5)
    assert row.churn_rate == pytest.approx(0.5)


def test_cohort_retention_matrix() -> None:
    o = hm.orders(
        [
            (1, "2024-12-03", 100), (1, "2024-12-20", 100), (1, "2025-01-04", 100),
            (2, "2024-12-31", 100),
            (3, "2025-01-15", 100), (3, "2025-03-01", 100),
        ]
    )  # fmt: skip
    data = engine.from_arrow({"o": o})
    long = cohorts.cohort_retention(data["o"]).to_pandas()
    cells = {(kpi.month_label(r.cohort), r.age): (r.customers, r.share) for r in long.itertuples()}
    assert cells == {
        ("2024-12", 0): (2, 1.0),
        ("2024-12", 1): (1, 0.5),
        ("2025-01", 0): (1, 1.0),
        ("2025-01", 2): (1, 1.0),
    }
    matrix = cohorts.as_matrix(long)
    assert matrix.loc["2024-12", "customers"] == 2
    assert math.isnan(matrix.loc["2025-01", 1])


def test_transaction_summary_merges_same_day_orders_and_leaves_out_the_first_spend() -> None:
    o = hm.orders(
        [(1, "2025-01-01", 100), (1, "2025-01-01", 50), (1, "2025-01-15", 300), (1, "2025-01-29", 500),
         (2, "2025-01-20", 700), (3, "2025-03-01", 9)]
    )  # fmt: skip
    data = engine.from_arrow({"o": o})
    end = kpi.day_of(hm.date(2025, 2, 1))
    s = summary.transaction_summary(data["o"], end_day=end).order_by("customer_id").to_pandas()
    assert s.customer_id.tolist() == [1, 2]  # customer 3 bought after the end
    one = s.iloc[0]
    assert (one["frequency"], one["recency"], one["T"], one["monetary"]) == (2, 28.0, 31.0, 400.0)
    assert (one.orders, one.total_amount) == (4, 950)
    weeks = summary.transaction_summary(data["o"], end_day=end, unit_days=7).order_by("customer_id")
    assert weeks.to_pandas()["T"].iloc[0] == pytest.approx(31 / 7)
    split = summary.calibration_holdout(
        data["o"], calibration_end_day=kpi.day_of(hm.date(2025, 1, 10)), observation_end_day=end
    ).to_pandas()
    assert split.set_index("customer_id").frequency_holdout.to_dict() == {1: 2}
    assert split.duration_holdout.iloc[0] == 22.0


def test_rfm_scores_and_segments() -> None:
    data = engine.from_arrow({"o": hm.rfm_orders()})
    end = kpi.day_of(hm.END)
    summ = summary.transaction_summary(data["o"], end_day=end)
    out = rfm.rfm_scores(summ, end_day=end).order_by("customer_id").to_pandas()
    assert out.recency_days.tolist() == [1, 2, 3, 4, 5]
    assert list(zip(out.r, out.f, out.m, strict=True)) == [
        (5, 5, 5), (4, 1, 1), (3, 3, 3), (2, 4, 4), (1, 2, 2)
    ]  # fmt: skip
    assert out.segment.tolist() == [
        "champions",
        "promising",
        "need_attention",
        "at_risk",
        "hibernating",
    ]
    assert out.rfm.iloc[0] == "555"
    assert rfm.label("champions", "ja") == "チャンピオン"
    three = rfm.rfm_scores(summ, end_day=end, bins=3).order_by("customer_id").to_pandas()
    assert three.r.tolist() == [
        3,
        3,
        2,
        1,
        1,
    ]  # ranks 1, .75, .5, .25, 0 -> floor(3·rank)+1, capped


def test_rfm_ties_get_the_same_score() -> None:
    o = hm.orders([(1, "2025-06-01", 100), (2, "2025-06-01", 100), (3, "2025-05-01", 50)])
    data = engine.from_arrow({"o": o})
    end = kpi.day_of(hm.END)
    out = rfm.rfm_scores(summary.transaction_summary(data["o"], end_day=end), end_day=end)
    frame = out.order_by("customer_id").to_pandas()
    assert frame.r.iloc[0] == frame.r.iloc[1] and frame.m.iloc[0] == frame.m.iloc[1]


def test_attitude_is_recency_weighted_and_unknown_is_explicit() -> None:
    end = hm.date(2025, 7, 1)
    year_ago = hm.date(2024, 7, 1).isoformat()
    a = hm.answers(
        [(1, "nps", 10, year_ago), (1, "nps", 0, "2025-06-30"), (2, "csat", 5, "2025-06-01")]
    )
    data = engine.from_arrow({"a": a})
    weights = {"nps": 1.0, "csat": 1.0}
    signals = loyalty.attitude_signals(answers=data["a"], weights=weights)
    att = loyalty.attitude_scores(signals, end_day=kpi.day_of(end), half_life_days=365)
    got = att.order_by("customer_id").to_pandas().set_index("customer_id")
    # The promoter answer is 365 days old (half weight), the detractor one 1 day.
    w_old, w_new = 0.5, 2 ** (-1 / 365)
    assert got.attitude[1] == pytest.approx(w_old * 1.0 / (w_old + w_new))
    assert got.attitude[2] == pytest.approx(1.0)
    import ibis
    import pyarrow as pa

    scored = ibis.memtable(
        pa.table({"customer_id": [1, 2, 3, 4], "behaviour": [0.9, 0.9, 0.1, 0.1],
                  "attitude": [0.2, 0.9, 0.9, None]})
    )  # fmt: skip
    m = loyalty.loyalty_matrix(scored, behaviour_threshold=0.7, attitude_threshold=0.6)
    assert data.con.to_pandas(m.order_by("customer_id")).loyalty.tolist() == [
        "spurious", "true", "latent", "attitude_unknown"
    ]  # fmt: skip


def test_loyalty_weights_are_validated() -> None:
    from kizuna.errors import ConfigError

    assert loyalty.parse_weights("nps=1, csat=0.5", loyalty.SIGNALS, "w") == {
        "nps": 1.0,
        "csat": 0.5,
    }
    for bad in ("nps=x", "mood=1", "nps", "nps=0", "nps=-1"):
        with pytest.raises(ConfigError):
            loyalty.parse_weights(bad, loyalty.SIGNALS, "w")


def test_lifecycle_stages_transitions_and_trend() -> None:
    import pyarrow as pa

    from kizuna.analytics import lifecycle

    o = hm.orders(
        [(1, f"2025-0{m}-0{d}", 100) for m in (1, 2, 3) for d in (2, 5)]  # 6 purchase days
        + [(2, "2025-03-10", 100)]                                        # new in March
        + [(3, "2024-10-01", 100), (3, "2024-10-20", 100)]               # quiet since October
    )  # fmt: skip
    signals = pa.table(
        {
            "customer_id": [1],
            "day": [kpi.day_of(hm.date(2025, 1, 3))],
            "value": [0.9],
            "weight": [1.0],
        }
    )
    advocacy = pa.table({"customer_id": [1], "day": [kpi.day_of(hm.date(2025, 3, 20))]})
    data = engine.from_arrow({"o": o, "s": signals, "a": advocacy})
    feb, mar = hm.month_of(hm.date(2025, 2, 1)), hm.month_of(hm.date(2025, 3, 1))
    rules = lifecycle.LifecycleRules(loyal_min_purchases=5, at_risk_days=90, lapsed_days=180)
    snaps = lifecycle.snapshots(data["o"], [feb, mar], rules, signals=data["s"], advocacy=data["a"])
    got = {(r.customer_id, r.month): r.stage for r in snaps.to_pandas().itertuples()}
    # Customer 1: 4 purchase days by February (repeat), 6 by March plus a referral
    # (ambassador). Customer 3: 131 idle days at the end of February (at risk),
    # 162 at the end of March (still at risk, lapsed only from 180).
    assert got == {
        (1, feb): "repeat", (1, mar): "ambassador",
        (2, mar): "new",
        (3, feb): "at_risk", (3, mar): "at_risk",
    }  # fmt: skip
    moves = lifecycle.transitions(snaps).to_pandas()
    march = moves[moves.month == mar]
    pairs = {(r.from_stage, r.to_stage): r.customers for r in march.itertuples()}
    assert pairs[("repeat", "ambassador")] == 1
    assert pairs[("at_risk", "at_risk")] == 1
    assert any(pd_isna(k[0]) and k[1] == "new" for k in pairs)
    trend = lifecycle.stage_counts(snaps).to_pandas()
    assert trend[(trend.month == mar) & (trend.stage == "ambassador")].customers.iloc[0] == 1


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_key_drivers_effect_sizes_and_intervals() -> None:
    import numpy as np
    import pandas as pd

    from kizuna.analytics import drivers

    rng = np.random.default_rng(3)
    n = 4_000
    late = rng.random(n) < 0.2
    unresolved = rng.random(n) < 0.15
    noise_flag = rng.random(n) < 0.5
    score = np.clip(np.round(7 + rng.normal(0, 1.2, n) - 1.0 * late - 1.5 * unresolved), 0, 10)
    frame = pd.DataFrame(
        {"score": score, "delivery_contact": late.astype(int),
         "unresolved_contact": unresolved.astype(int), "community": noise_flag.astype(int)}
    )  # fmt: skip
    result = drivers.key_drivers(frame).set_index("driver")
    assert result.index[0] == "unresolved_contact"  # the largest effect first
    for name, effect in (("unresolved_contact", -1.5), ("delivery_contact", -1.0)):
        row = result.loc[name]
        assert row.adjusted_low < effect < row.adjusted_high
        assert row.difference_high < 0
    assert result.loc["community"].adjusted_low < 0 < result.loc["community"].adjusted_high
    with_ = score[late]
    assert result.loc["delivery_contact"].nps_with == pytest.approx(
        100 * ((with_ >= 9).mean() - (with_ <= 6).mean())
    )
