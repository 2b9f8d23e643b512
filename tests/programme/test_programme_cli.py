"""The programme commands end to end on a SQLite workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.apiclient import add_members
from typer.testing import CliRunner

from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.services.programme import config

runner = CliRunner()


def run(ws: Path, *args: str) -> str:
    result = runner.invoke(app, ["-w", str(ws), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_programme_points_coupons_member_and_keys(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    config.forget_cache()
    ws = sqlite_workspace.settings.workspace
    add_members(sqlite_workspace, 2)
    assert "wrote" in run(ws, "program", "init")
    assert "is valid" in run(ws, "program", "validate")
    (ws / "programme.toml").write_text(
        (ws / "programme.toml")
        .read_text()
        .replace("[earning.category_multipliers]", '[earning.category_multipliers]\n"SALE" = 0.5')
    )
    assert "version" in run(ws, "program", "apply")
    sim = json.loads(run(ws, "program", "simulate", "--line", "1980", "--line", "1000:SALE"))
    assert sim["points"] == 24 and "x0.5 category SALE" in sim["lines"][1]["why"]
    assert json.loads(run(ws, "program", "show"))["document"]["earning"][
        "category_multipliers"
    ] == {"SALE": 0.5}
    adj = json.loads(
        run(
            ws,
            "points",
            "adjust",
            "M00000",
            "150",
            "--reason",
            "apology for late delivery",
            "--actor",
            "sato",
        )
    )
    assert adj["balance"]["available"] == 150
    member = json.loads(run(ws, "member", "show", "M00000"))
    assert (
        member["ledger"][0]["actor"] == "sato"
        and member["ledger"][0]["reason"] == "apology for late delivery"
    )
    out = tmp_path / "codes.txt"
    assert "10000 codes" in run(
        ws,
        "coupons",
        "generate",
        "--count",
        "10000",
        "--kind",
        "percent",
        "--value",
        "10",
        "--out",
        str(out),
    )
    codes = out.read_text().split()
    assert len(set(codes)) == 10000
    assert (
        json.loads(run(ws, "coupons", "validate", codes[0], "--order-total", "2000"))["discount"]
        == 200
    )
    assert "every balance equals" in run(ws, "points", "check")
    assert json.loads(run(ws, "points", "liability"))["outstanding_points"] == 150
    assert json.loads(run(ws, "points", "jobs"))["members"] == 0
    key = run(ws, "api-key", "create", "--scope", "pos").strip()
    assert key.startswith("kz_")
    other = run(ws, "api-key", "create", "--scope", "analyst", "--name", "bi").strip()
    prefix, other_prefix = key[3:11], other[3:11]
    assert "revoked" in run(ws, "api-key", "revoke", other_prefix)
    listing = run(ws, "api-key", "list")
    assert prefix in listing and other_prefix in listing and key not in listing
    active = run(ws, "api-key", "list", "--active")
    assert prefix in active and other_prefix not in active


def test_a_debit_beyond_the_balance_is_refused_with_an_exit_code(sqlite_workspace: Context) -> None:
    add_members(sqlite_workspace, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kizuna",
            "-w",
            str(sqlite_workspace.settings.workspace),
            "points",
            "adjust",
            "--reason",
            "x",
            "M00000",
            "--",
            "-5",
        ],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=120,
    )
    assert result.returncode == 7 and "only 0 are available" in result.stderr
