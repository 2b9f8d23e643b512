"""The analytics commands end to end: `kizuna clv fit|predict` on files, `score` and friends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kizuna.analytics.clv import bgnbd, gamma_gamma
from kizuna.ingest.sample import generate


def kizuna(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "kizuna.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_clv_fit_on_a_summary_file_prints_paper_named_parameters(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    T = rng.integers(10, 100, 1_500).astype(float)
    x, t_x = bgnbd.simulate((1.0, 6.5, 0.9, 7.0), T, rng)
    t_x = np.round(t_x, 1)
    m = np.where(x > 0, gamma_gamma.simulate((6.0, 4.0, 2500.0), np.maximum(x, 1), rng), 0)
    lines = ["customer_id,frequency,recency,T,monetary"]
    lines += [
        f"C{i},{int(a)},{b},{c},{d:.2f}"
        for i, (a, b, c, d) in enumerate(zip(x, t_x, T, m, strict=True))
    ]
    (tmp_path / "summary.csv").write_text("\n".join(lines) + "\n")
    out = kizuna("clv", "fit", "--model", "bgnbd", "--input", "summary.csv", "--json",
                 "--save", "bg.json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["params"]) == set(doc["std_errors"]) == {"r", "alpha", "a", "b"}
    expected = bgnbd.fit(x, t_x, T)
    for k, v in expected.params.items():
        assert doc["params"][k] == pytest.approx(v, rel=1e-4)
    assert doc["log_likelihood"] == pytest.approx(expected.log_likelihood, rel=1e-9)
    gg = kizuna(
        "clv", "fit", "--model", "gamma-gamma", "--input", "summary.csv", "--json", cwd=tmp_path
    )
    assert set(json.loads(gg.stdout)["params"]) == {"p", "q", "gamma"}
    pn = kizuna(
        "clv", "fit", "--model", "pareto-nbd", "--input", "summary.csv", "--json", cwd=tmp_path
    )
    assert set(json.loads(pn.stdout)["params"]) == {"r", "alpha", "s", "beta"}
    pred = kizuna("clv", "predict", "--model", "bg.json", "--input", "summary.csv",
                  "--horizon", "52", "--output", "pred.csv", cwd=tmp_path)  # fmt: skip
    assert pred.returncode == 0, pred.stderr
    header = (tmp_path / "pred.csv").read_text().splitlines()[0]
    assert header == '"customer_id","p_alive","expected_purchases"'
    table = kizuna("clv", "fit", "--model", "bgnbd", "--input", "summary.csv", cwd=tmp_path)
    assert "alpha" in table.stdout and "log-likelihood" in table.stdout


def test_clv_fit_on_transactions_and_sbg_files(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "customer,date,amount\n"
        "a,2025-01-01,10\na,2025-01-01,5\na,2025-01-15,20\na,2025-02-12,30\n"
        "b,2025-01-03,7\nb,2025-03-01,9\nc,2025-02-01,100\nd,2025-01-20,8\n"
        "e,2025-01-05,12\ne,2025-01-06,4\ne,2025-02-20,6\n"
    )
    out = kizuna("clv", "fit", "--model", "bgnbd", "--input", "tx.csv", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n_customers"] == 5 and np.isfinite(doc["log_likelihood"])
    (tmp_path / "sbg.csv").write_text(
        "period,active\n0,1000\n1,631\n2,468\n3,382\n4,326\n5,289\n6,262\n7,241\n"
    )
    sbg = kizuna("clv", "fit", "--model", "sbg", "--input", "sbg.csv", "--json", cwd=tmp_path)
    params = json.loads(sbg.stdout)["params"]
    assert params["alpha"] == pytest.approx(0.704, abs=1e-3)  # Fader & Hardie (2007)
    assert params["beta"] == pytest.approx(1.182, abs=1e-3)
    bad = kizuna("clv", "fit", "--model", "bgnbd", "--input", "sbg.csv", cwd=tmp_path)
    assert bad.returncode == 5 and "customer,date" in bad.stderr


def test_score_then_print_rfm_matrix_kpi_and_cohorts(tmp_path: Path) -> None:
    assert kizuna("init", "shop", cwd=tmp_path).returncode == 0
    generate(tmp_path / "sample", 1_500, seed=5)
    assert kizuna("-w", "shop", "import-folder", "sample", cwd=tmp_path).returncode == 0
    scored = kizuna("-w", "shop", "score", "--as-of", "2026-10-31", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert "scoring run v1" in scored.stdout and "Spurious loyalty" in scored.stdout
    rfm = kizuna("-w", "shop", "rfm", "--lang", "ja", cwd=tmp_path)
    assert "チャンピオン" in rfm.stdout
    matrix = kizuna("-w", "shop", "matrix", "--json", cwd=tmp_path)
    assert json.loads(matrix.stdout)["version"] == 1
    kpi = kizuna("-w", "shop", "kpi", "--monthly", cwd=tmp_path)
    assert kpi.returncode == 0 and "2026-10" in kpi.stdout and "±" in kpi.stdout
    cohorts = kizuna("-w", "shop", "cohorts", "--max-age", "3", cwd=tmp_path)
    assert cohorts.returncode == 0 and "2023-11" in cohorts.stdout
