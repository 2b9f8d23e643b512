"""Scoring runs on the generator's sample: stored, versioned, and telling spurious loyalty apart."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services import analytics_queries, scoring
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.store.scoring_tables import customer_scores, scoring_runs
from kizuna.workspace import Workspace

AS_OF = date(2026, 10, 31)  # the generator's default last day


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("scoring-sample"), 4_000, seed=21)


def load(ctx: Context, folder: Path) -> None:
    import_paths(ctx, ImportFiles(files_in_folder(folder)))


def test_score_stores_a_versioned_run_with_every_buyer(
    workspace: Context, sample: SampleSummary
) -> None:
    load(workspace, sample.out_dir)
    first, result = scoring.score(workspace, AS_OF)
    second, _ = scoring.score(workspace, AS_OF)
    assert (first.version, second.version) == (1, 2)
    truth = pd.read_csv(sample.out_dir / "ground_truth.csv")
    with workspace.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).where(customer_scores.c.run_id == first.id)
        ).scalar_one()
        status = conn.execute(
            sa.select(scoring_runs.c.status).where(scoring_runs.c.id == first.id)
        ).scalar_one()
    assert status == "complete"
    assert stored == result.scores.num_rows == first.customers
    # Every customer with a purchase that is not cancelled or fully refunded away is scored.
    assert 0.95 * truth.buyer.sum() <= stored <= truth.buyer.sum()
    bg = first.models["bgnbd"]["params"]
    assert set(bg) == {"r", "alpha", "a", "b"}
    assert set(first.kpis["loyalty_counts"]) == {
        "true",
        "latent",
        "spurious",
        "none",
        "attitude_unknown",
    }
    assert -100 <= first.kpis["nps"]["nps"] <= 100
    assert set(result.timings) >= {
        "extract",
        "summary",
        "clv_fit",
        "rfm",
        "matrix",
        "store",
        "total",
    }
    latest = scoring.latest_run(workspace)
    assert latest.version == 2
    frame = analytics_queries.scores_frame(workspace, 1)
    assert frame.customer_id.str.startswith("C").all()
    assert frame.loyalty.isin(["true", "latent", "spurious", "none", "attitude_unknown"]).all()


def test_loyalty_matrix_finds_the_planted_spurious_customers(
    sqlite_workspace: Context, sample: SampleSummary
) -> None:
    load(sqlite_workspace, sample.out_dir)
    run, _ = scoring.score(sqlite_workspace, AS_OF)
    scores = analytics_queries.scores_frame(sqlite_workspace, run.version)
    truth = pd.read_csv(
        sample.out_dir / "ground_truth.csv", usecols=["customer_id", "loyalty_class"]
    )
    merged = scores.merge(truth, on="customer_id")
    confusion = pd.crosstab(merged.loyalty_class, merged.loyalty, margins=True)
    print("\nplanted (rows) x found (columns)\n", confusion.to_string())
    known = merged[merged.loyalty != "attitude_unknown"]
    spurious = known[known.loyalty_class == "spurious"].loyalty.value_counts(normalize=True)
    print("planted spurious with a known attitude, found as:\n", spurious.round(3).to_string())
    assert spurious.idxmax() == "spurious"
    assert spurious["spurious"] > 0.45
    # The attached are found attached: planted true/latent rarely land in spurious/none.
    attached = known[known.loyalty_class.isin(["true", "latent"])]
    assert attached.loyalty.isin(["true", "latent"]).mean() > 0.7
    # Unknown attitude is a state of its own, and only for customers without signals.
    assert (merged.loyalty == "attitude_unknown").sum() == merged.attitude_score.isna().sum()


def test_python_api_returns_analytics_frames(
    sqlite_workspace: Context, sample: SampleSummary
) -> None:
    load(sqlite_workspace, sample.out_dir)
    with Workspace(sqlite_workspace) as ws:
        scores = ws.score(AS_OF)
        assert len(scores) > 1000 and "clv" in scores.columns
        rfm = ws.rfm()
        assert rfm.customers.sum() == len(scores)
        assert {"en", "ja"} <= set(rfm.columns)
        matrix = ws.loyalty_matrix()
        assert matrix.customers.sum() == len(scores)
        monthly = ws.kpis(monthly=True)
        assert {"month", "nps", "margin_of_error", "csat", "retention_rate"} <= set(monthly.columns)
        assert monthly.month.iloc[-1] == "2026-10"
        cohorts = ws.cohorts()
        assert (cohorts[0] == 1.0).all()
        trend, moves = ws.lifecycle(months=3)
        assert list(trend.index) == ["2026-08", "2026-09", "2026-10"]
        assert trend.loc["2026-10"].sum() == len(scores)
        assert moves.to_numpy().sum() == len(scores)
        drivers = ws.drivers().set_index("driver")
        # The generator lowers NPS by 1.5 for an unresolved contact.
        assert drivers.loc["unresolved_contact"].adjusted_high < 0
        personas = ws.personas(k=4)
        assert personas.customers.sum() == len(scores) and personas.en.str.len().min() > 0


def test_propensity_to_become_loyal_is_scored_with_a_held_out_auc(
    sqlite_workspace: Context, sample: SampleSummary
) -> None:
    load(sqlite_workspace, sample.out_dir)
    run, result = scoring.score(sqlite_workspace, AS_OF)
    model = run.models["propensity"]
    print("\npropensity:", model)
    assert model["auc_next_window"] > 0.7
    frame = result.scores.to_pandas()
    loyal = frame.lifecycle.isin(["loyal", "ambassador"])
    assert frame.loyal_propensity[loyal].isna().all()
    assert frame.loyal_propensity[~loyal].between(0, 1).all()
