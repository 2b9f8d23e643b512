"""`kizuna clv predict` combining a purchase and a spend model, and `kizuna clv diagnose`."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from tests.analytics.test_cli_analytics import kizuna

from kizuna.analytics.clv import bgnbd, gamma_gamma, value
from kizuna.services import clv_files

BG = (0.8, 5.0, 0.8, 4.0)  # weekly purchase rate r/α = 0.16
GG = (6.0, 4.0, 2500.0)


def _summary_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(8)
    T = rng.integers(20, 104, 2_000).astype(float)
    x, t_x = bgnbd.simulate(BG, T, rng)
    m = np.where(x > 0, gamma_gamma.simulate(GG, np.maximum(x, 1), rng), 0)
    path = tmp_path / "summary.csv"
    rows = ["customer_id,frequency,recency,T,monetary"]
    rows += [f"C{i},{int(a)},{b:.2f},{c},{d:.2f}" for i, (a, b, c, d) in enumerate(zip(x, t_x, T, m, strict=True))]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


def test_predict_combines_purchase_and_spend_models_into_clv(tmp_path: Path) -> None:
    path = _summary_file(tmp_path)
    for model in ("bgnbd", "gamma-gamma"):
        out = kizuna("clv", "fit", "--model", model, "--input", "summary.csv", "--json",
                     cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        # The --json output of `clv fit` is a model file as it stands.
        (tmp_path / f"{model}.json").write_text(out.stdout)
    saved = kizuna("clv", "predict", "--model", "bgnbd.json", "--spend-model", "gamma-gamma.json",
                   "--input", "summary.csv", "--horizon", "52", "--discount-rate", "0.1",
                   "--output", "saved.csv", cwd=tmp_path)  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    on_the_fly = kizuna("clv", "predict", "--model", "bgnbd", "--spend-model", "gamma-gamma",
                        "--input", "summary.csv", "--output", "fly.json", cwd=tmp_path)  # fmt: skip
    assert on_the_fly.returncode == 0, on_the_fly.stderr
    with (tmp_path / "saved.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["customer_id", "p_alive", "expected_purchases", "expected_spend",
                             "clv"]  # fmt: skip
    fly = json.loads((tmp_path / "fly.json").read_text())
    assert len(fly) == len(rows) == 2_000
    for a, b in zip(rows[:50], fly[:50], strict=True):
        assert a["customer_id"] == b["customer_id"]
        assert float(a["clv"]) == pytest.approx(b["clv"], rel=1e-6)
    # The numbers are the model modules' own, for one customer worked through.
    bg = json.loads((tmp_path / "bgnbd.json").read_text())["params"]
    gg = json.loads((tmp_path / "gamma-gamma.json").read_text())["params"]
    s = clv_files.summarise(clv_files.read_table(path))
    i = int(np.argmax(s.frequency))
    p = [bg[k] for k in bgnbd.NAMES]
    xi, ti, Ti = s.frequency[i : i + 1], s.recency[i : i + 1], s.T[i : i + 1]
    assert s.monetary is not None
    spend = gamma_gamma.conditional_expected_spend(
        [gg[k] for k in gamma_gamma.NAMES], xi, s.monetary[i : i + 1]
    )
    clv = value.discounted_value(
        lambda t: bgnbd.conditional_expected_purchases(p, t, xi, ti, Ti), spend,
        horizon=52, steps=12, annual_discount=0.1, unit_per_year=365.25 / 7,
    )  # fmt: skip
    row = rows[i]
    assert float(row["p_alive"]) == pytest.approx(bgnbd.probability_alive(p, xi, ti, Ti)[0])
    assert float(row["expected_spend"]) == pytest.approx(spend[0])
    assert float(row["clv"]) == pytest.approx(clv[0], rel=1e-9)
    # Discounting lowers the value; no spend model keeps the old three columns.
    assert float(row["clv"]) < float(row["expected_purchases"]) * float(row["expected_spend"])
    plain = kizuna("clv", "predict", "--model", "bgnbd.json", "--input", "summary.csv",
                   "--json", cwd=tmp_path)  # fmt: skip
    assert set(json.loads(plain.stdout)[0]) == {"customer_id", "p_alive", "expected_purchases"}


def test_predict_refuses_mismatched_models_with_a_clear_message(tmp_path: Path) -> None:
    _summary_file(tmp_path)
    bad = kizuna("clv", "predict", "--model", "gamma-gamma", "--spend-model", "bgnbd",
                 "--input", "summary.csv", cwd=tmp_path)  # fmt: skip
    assert bad.returncode != 0 and "purchase model" in bad.stderr
    wrong = kizuna("clv", "predict", "--model", "bgnbd", "--spend-model", "bgnbd",
                   "--input", "summary.csv", cwd=tmp_path)  # fmt: skip
    assert wrong.returncode != 0 and "gamma-gamma" in wrong.stderr
    missing = kizuna("clv", "predict", "--model", "nope.json", "--input", "summary.csv",
                     cwd=tmp_path)  # fmt: skip
    assert missing.returncode != 0 and "neither a model file nor a model name" in missing.stderr


def _transactions(tmp_path: Path, n: int = 3_000) -> Path:
    """Dated purchases drawn from the BG/NBD process over two years (times in weeks)."""
    rng = np.random.default_rng(12)
    r, alpha, a, b = BG
    start = date(2024, 1, 1)
    end_week = 104.0
    lines = ["customer,date,amount"]
    for c in range(n):
        lam, p = rng.gamma(r, 1 / alpha), rng.beta(a, b)
        t = rng.uniform(0, 52)
        lines.append(f"c{c},{start + timedelta(days=int(t * 7))},{rng.gamma(6, 400):.0f}")
        while True:
            t += rng.exponential(1 / lam)
            if t >= end_week:
                break
            lines.append(f"c{c},{start + timedelta(days=int(t * 7))},{rng.gamma(6, 400):.0f}")
            if rng.random() < p:
                break
    path = tmp_path / "tx.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_diagnose_compares_holdout_purchases_by_frequency(tmp_path: Path) -> None:
    _transactions(tmp_path)
    out = kizuna("clv", "diagnose", "--input", "tx.csv", "--calibration-end", "2025-03-31",
                 "--as-of", "2025-12-28", "--json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["calibration_end"] == "2025-03-31" and doc["holdout_end"] == "2025-12-28"
    buckets = {r["bucket"]: r for r in doc["by_frequency"]}
    assert list(buckets)[-1] == "all" and "7+" in buckets
    total = buckets["all"]
    assert total["customers"] == 3_000
    # The data come from the model, so the model predicts the holdout well overall
    # and in the well-populated buckets.
    assert total["predicted"] == pytest.approx(total["actual"], rel=0.1)
    for key in ("0", "1", "2"):
        assert buckets[key]["predicted"] == pytest.approx(buckets[key]["actual"], rel=0.25, abs=0.1)
    table = kizuna("clv", "diagnose", "--input", "tx.csv", "--holdout-days", "120", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "predicted (mean)" in table.stdout and "7+" in table.stdout
    _summary_file(tmp_path)
    refused = kizuna("clv", "diagnose", "--input", "summary.csv", cwd=tmp_path)
    assert refused.returncode != 0 and "dated transactions" in refused.stderr
