"""The same analytics code on PySpark gives the same numbers as on DuckDB.

One local Spark session (local[2], loopback only) serves the whole test
session; the data are a small generated sample, so the suite stays fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kizuna.analytics import cohorts, engine, kpi, rfm, scoring, summary
from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("PySpark needs a Java runtime", allow_module_level=True)

AS_OF = date(2026, 10, 31)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("kizuna-tests")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def frames(data: engine.Dataset) -> dict[str, pd.DataFrame]:
    """Every analytic on ``data``, as sorted pandas frames."""
    end = kpi.day_of(AS_OF) + 1
    orders, answers = data["orders"], data["survey_answers"]
    summ = summary.transaction_summary(orders, end_day=end, unit_days=7.0)
    last = AS_OF.year * 12 + AS_OF.month - 1
    months = list(range(last - 11, last + 1))
    out = {
        "summary": summ.to_pandas().sort_values("customer_id"),
        "holdout": summary.calibration_holdout(
            orders, calibration_end_day=end - 180, observation_end_day=end
        )
        .to_pandas()
        .sort_values("customer_id"),
        "rfm": rfm.rfm_scores(summ, end_day=end).to_pandas().sort_values("customer_id"),
        "nps": kpi.nps(answers, by_month=True).to_pandas(),
        "csat": kpi.csat_ces(answers, by_month=True).to_pandas(),
        "repeat": kpi.repeat_rate(orders, by_month=True).to_pandas(),
        "retention": kpi.retention(orders, months=months).to_pandas(),
        "cohorts": cohorts.cohort_retention(orders).to_pandas(),
    }
    return {k: v.reset_index(drop=True) for k, v in out.items()}


def assert_same(left: pd.DataFrame, right: pd.DataFrame, what: str) -> None:
    assert list(left.columns) == list(right.columns), what
    assert len(left) == len(right), what
    for col in left.columns:
        a, b = left[col].to_numpy(), right[col].to_numpy()
        if np.issubdtype(np.asarray(a).dtype, np.number) and np.issubdtype(
            np.asarray(b).dtype, np.number
        ):
            assert np.allclose(
                a.astype(float), b.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True
            ), (what, col)
        else:
            assert [None if pd.isna(x) else x for x in a] == [
                None if pd.isna(x) else x for x in b
            ], (what, col)


def test_duckdb_and_pyspark_give_the_same_numbers(
    spark: Any, sqlite_workspace: Context, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import ibis

    folder = tmp_path_factory.mktemp("spark-sample")
    generate(folder, 600, seed=17)
    import_paths(sqlite_workspace, ImportFiles(files_in_folder(folder)))
    duck = engine.load(sqlite_workspace)
    spk = engine.from_arrow(duck.arrow, ibis.pyspark.connect(spark))
    left, right = frames(duck), frames(spk)
    for name in left:
        assert len(left[name]) > 0, name
        assert_same(left[name], right[name], name)
    # The whole scoring run, models included, agrees too.
    options = scoring.ScoringOptions(as_of=AS_OF)
    a = scoring.run(duck, options).scores.to_pandas()
    b = scoring.run(spk, options).scores.to_pandas()
    assert_same(a, b[a.columns], "scores")
