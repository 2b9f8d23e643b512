"""The recommend and offers commands end to end on a SQLite workspace."""

from __future__ import annotations

import json
from pathlib import Path

from tests.recommend.recsample import load
from typer.testing import CliRunner

from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.errors import KizunaError
from kizuna.ingest.sample import SampleSummary

runner = CliRunner()


def run(ws: Path, *args: str) -> str:
    result = runner.invoke(app, ["-w", str(ws), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fail(ws: Path, *args: str) -> str:
    result = runner.invoke(app, ["-w", str(ws), *args])
    assert isinstance(result.exception, KizunaError), result.output
    return str(result.exception)


def test_evaluate_fit_show_stock_and_offers(
    sqlite_workspace: Context, rec_sample: SampleSummary
) -> None:
    ws = sqlite_workspace.settings.workspace
    assert "kizuna recommend fit" in fail(ws, "recommend", "show", "C0000001")
    load(sqlite_workspace, rec_sample.out_dir)
    out = run(ws, "recommend", "evaluate", "--as-of", "2026-11-01", "--no-als")
    assert "precision@10" in out and "similar" in out and "baseline" in out
    doc = json.loads(run(ws, "recommend", "evaluate", "--as-of", "2026-11-01", "--json"))
    assert doc["models"]["similar"]["precision"] > doc["models"]["popular"]["precision"]
    assert set(doc["models"]) == {"popular", "similar", "als"}
    fitted = json.loads(run(ws, "recommend", "fit", "--as-of", "2026-11-01", "--no-als", "--json"))
    assert fitted["model"] == "similar" and fitted["customers"] > 2_000
    buyer = str(fitted["pairs"][0]["a"])  # any product id works for stock
    picks = json.loads(run(ws, "recommend", "show", "C0000001", "-n", "3", "--json"))
    assert len(picks) == 3 and picks[0]["product_id"].startswith("P")
    run(ws, "recommend", "stock", picks[0]["product_id"], "0")
    after = json.loads(run(ws, "recommend", "show", "C0000001", "-n", "3", "--json"))
    assert picks[0]["product_id"] not in [p["product_id"] for p in after]
    assert "does not exist" in fail(ws, "recommend", "stock", "NOPE", "1")
    assert buyer

    assert "unknown rule 'bougth'" in fail(
        ws, "offers", "add", "X", "--name", "x", "--kind", "content", "--margin", "1",
        "--rules", '{"bougth": ["P0001"]}',
    )  # fmt: skip
    run(ws, "offers", "add", "NEWS", "--name", "お知らせ", "--kind", "content", "--margin", "500",
        "--max-total", "5")  # fmt: skip
    assert "no scoring run" in fail(ws, "offers", "assign", "--batch", "b1")
    best = json.loads(run(ws, "offers", "best", "C0000001", "--all", "--json"))
    assert best[0]["offer"] == "NEWS" and best[0]["reasons"]
    listed = json.loads(run(ws, "offers", "list", "--json"))
    assert listed[0]["code"] == "NEWS" and listed[0]["assigned"] == 0
