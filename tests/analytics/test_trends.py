"""Monthly trend series: historical LTV, loyal customers' revenue share, mean P(alive)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tests.analytics import handmade as hm

from kizuna.analytics import engine, kpi, lifecycle, trends
from kizuna.analytics.clv import bgnbd
from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services import analytics_queries, scoring
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths

PARAMS = (1.0, 6.0, 0.9, 7.0)


def test_trends_on_hand_made_data() -> None:
    o = hm.orders(
        [(1, "2025-01-02", 100), (1, "2025-01-05", 50), (1, "2025-02-07", 30),
         (2, "2025-02-10", 200), (3, "2024-12-01", 10), (3, "2025-01-20", 10)]
    )  # fmt: skip
    jan, feb = hm.month_of(date(2025, 1, 1)), hm.month_of(date(2025, 2, 1))
    stages = pa.table(
        {"customer_id": [1, 1, 2, 3], "month": [jan, feb, feb, jan],
         "stage": ["repeat", "loyal", "new", "ambassador"]}
    )  # fmt: skip
    data = engine.from_arrow({"o": o, "s": stages})
    got = trends.monthly_loyalty_trends(
        data["o"], [jan, feb], stages=data["s"], bgnbd_params=PARAMS
    ).to_pandas()
    assert got.month.tolist() == [jan, feb]
    # January: customers 1 (150) and 3 (20 so far); February adds 2 (200) and 1's 30.
    assert got.buyers.tolist() == [2, 3]
    assert got.historical_ltv.tolist() == pytest.approx([85.0, 400 / 3])
    assert got.month_revenue.tolist() == [160, 230]
    # January: customer 3 (ambassador) spent 10 of 160; February: customer 1 (loyal) 30 of 230.
    assert got.loyal_revenue_share.tolist() == pytest.approx([10 / 160, 30 / 230])
    assert got.loyal_customers.tolist() == [1, 1]

    # P(alive) at each month end equals the model module's, per history.
    def p(x: float, t_x_days: float, T_days: float) -> float:
        return float(bgnbd.probability_alive(PARAMS, np.array([x]), np.array([t_x_days / 7]),
                                             np.array([T_days / 7]))[0])  # fmt: skip

    feb_end, jan_end = kpi.day_of(date(2025, 3, 1)), kpi.day_of(date(2025, 2, 1))
    d = {k: kpi.day_of(date.fromisoformat(v)) for k, v in
         {"c1a": "2025-01-02", "c1b": "2025-01-05", "c1c": "2025-02-07", "c2": "2025-02-10",
          "c3a": "2024-12-01", "c3b": "2025-01-20"}.items()}  # fmt: skip
    jan_ps = [p(1, d["c1b"] - d["c1a"], jan_end - d["c1a"]),
              p(1, d["c3b"] - d["c3a"], jan_end - d["c3a"])]  # fmt: skip
    feb_ps = [p(2, d["c1c"] - d["c1a"], feb_end - d["c1a"]), 1.0,
              p(1, d["c3b"] - d["c3a"], feb_end - d["c3a"])]  # fmt: skip
    assert got.mean_p_alive.tolist() == pytest.approx([np.mean(jan_ps), np.mean(feb_ps)])
    assert got.model_active_customers.tolist() == pytest.approx([sum(jan_ps), sum(feb_ps)])


def test_p_alive_expression_survives_extreme_histories() -> None:
    h = pa.table(
        {"purchases": [1, 5_001, 3_001, 2], "first": [0, 0, 0, 0],
         "last": [0, 10_000, 100, 1], "edge": [20_000, 10_001, 15_000, 15_000]}
    )  # fmt: skip
    data = engine.from_arrow({"h": h})
    got = data["h"].select(p=trends.p_alive_expr(data["h"], PARAMS)).to_pandas().p.to_numpy()
    want = bgnbd.probability_alive(
        PARAMS, np.array([0, 5000, 3000, 1.0]), np.array([0, 10_000, 100, 1]) / 7,
        np.array([20_000, 10_001, 15_000, 15_000]) / 7,
    )  # fmt: skip
    assert np.all(np.isfinite(got))
    assert got == pytest.approx(want, abs=1e-12)


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("trend-sample"), 600, seed=5)


def test_loyalty_trend_frame_on_a_workspace(
    workspace: Context, small_sample: SampleSummary
) -> None:
    import_paths(workspace, ImportFiles(files_in_folder(small_sample.out_dir)))
    before = analytics_queries.loyalty_trend_frame(workspace, 6, date(2026, 10, 31))
    assert before.month.tolist()[-1] == "2026-10" and len(before) == 6
    assert before.bgnbd_source.iloc[0].startswith("fitted")
    assert before.buyers.is_monotonic_increasing
    assert ((before.mean_p_alive > 0) & (before.mean_p_alive <= 1)).all()
    assert ((before.loyal_revenue_share >= 0) & (before.loyal_revenue_share <= 1)).all()
    run, result = scoring.score(workspace, date(2026, 10, 31))
    after = analytics_queries.loyalty_trend_frame(workspace, 6, date(2026, 10, 31))
    assert after.bgnbd_source.iloc[0] == f"scoring run v{run.version}"
    # The run also stores the purchase model's holdout check.
    holdout = run.models["bgnbd_holdout"]
    assert holdout["holdout_end"] == "2026-10-31" and holdout["by_frequency"][-1]["bucket"] == "all"
    assert holdout["by_frequency"][-1]["customers"] > 0
    last = after.iloc[-1]
    # The last month end is the run's day: same customers, LTV and mean P(alive) as the run.
    assert last.buyers == result.scores.num_rows
    assert last.historical_ltv == pytest.approx(run.kpis["historical_ltv"])
    assert last.mean_p_alive == pytest.approx(run.kpis["mean_p_alive"], rel=1e-9)
    stages = result.scores["lifecycle"].to_pylist()
    assert last.loyal_customers == sum(s in lifecycle_loyal() for s in stages)


def lifecycle_loyal() -> tuple[str, ...]:
    assert set(trends.LOYAL_STAGES) <= set(lifecycle.STAGES)
    return trends.LOYAL_STAGES


def test_kpi_monthly_prints_the_loyalty_trend(tmp_path: Path, small_sample: SampleSummary) -> None:
    from tests.analytics.test_cli_analytics import kizuna

    ws = tmp_path / "ws"
    assert kizuna("init", str(ws), cwd=tmp_path).returncode == 0
    out = kizuna("-w", str(ws), "import-folder", str(small_sample.out_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = kizuna("-w", str(ws), "kpi", "--monthly", "--until", "2026-10-31",
                 "--trend-months", "3", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "loyalty trend" in out.stdout and "mean P(alive)" in out.stdout
    assert "2026-08" in out.stdout and "2026-10" in out.stdout
