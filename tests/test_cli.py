"""The command line end to end, as a person runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import CUSTOMERS_CSV, ORDERS_CSV, write


def kizuna(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    full_env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kizuna", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    result = kizuna("init", "shop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "workspace" in result.stdout and "Asia/Tokyo" in result.stdout
    return tmp_path / "shop"


def test_import_show_and_summarise(shop: Path, tmp_path: Path) -> None:
    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    write(tmp_path / "orders.csv", ORDERS_CSV)
    result = kizuna("import-folder", str(tmp_path), cwd=shop)
    assert result.returncode == 0, result.stderr
    assert "imported: 5 new, 0 updated, 0 unchanged" in result.stdout
    again = kizuna(
        "-w", str(shop), "import", "customers", str(tmp_path / "customers.csv"), cwd=tmp_path
    )
    assert again.returncode == 0 and "0 new, 0 updated, 3 unchanged" in again.stdout

    show = kizuna("customer", "show", "C1", cwd=shop)
    assert show.returncode == 0, show.stderr
    assert "山田 太郎" in show.stdout and "Order O1" in show.stdout and "¥1,980" in show.stdout
    as_json = json.loads(kizuna("customer", "show", "C1", "--json", cwd=shop).stdout)
    assert as_json["customer"]["customer_id"] == "C1" and as_json["timeline"]

    summary = kizuna("summary", cwd=shop)
    # O1 was placed at 23:30 on 31 January in Tokyo (January); O2 on 1 February.
    assert (
        "2025-01" in summary.stdout and "2025-02" in summary.stdout and "¥6,980" in summary.stdout
    )

    check = kizuna("db", "check", cwd=shop)
    assert check.returncode == 0 and "every reference resolves" in check.stdout


def test_a_rejected_import_exits_5_and_names_the_line(shop: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "customers.csv", CUSTOMERS_CSV + "C4,X,not-an-email,1990-02-30,,,\n")
    result = kizuna("import", "customers", str(bad), cwd=shop)
    assert result.returncode == 5
    assert "customers.csv, line 5, column birthday" in result.stderr
    assert "nothing imported" in result.stdout
    assert "Traceback" not in result.stderr
    reports = list((shop / "imports").glob("*/report.csv"))
    assert len(reports) == 1 and "line" in reports[0].read_text(encoding="utf-8")


def test_skip_bad_exits_6_and_writes_the_rejects(shop: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "customers.csv", CUSTOMERS_CSV + "C4,X,x@example.jp,1990-02-30,,,\n")
    result = kizuna("import", "customers", str(bad), "--skip-bad", cwd=shop)
    assert result.returncode == 6, result.stderr
    assert "3 new" in result.stdout and "1 bad row(s) skipped" in result.stdout
    rejects = list((shop / "imports").glob("*/customers.rejects.csv"))
    assert len(rejects) == 1 and "1990-02-30" in rejects[0].read_text(encoding="utf-8")


def test_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = kizuna("summary", cwd=tmp_path)
    assert result.returncode == 3
    assert "not a Kizuna workspace" in result.stderr and "kizuna init" in result.stderr
    assert "Traceback" not in result.stderr
    result = kizuna("import", "custmers", "x.csv", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    result = kizuna("init", "w2", "--timezone", "Tokyo", cwd=tmp_path)
    assert result.returncode == 2 and "unknown IANA timezone" in result.stderr


def test_mapping_japanese_columns_from_the_command_line(shop: Path, tmp_path: Path) -> None:
    path = write(
        tmp_path / "会員.csv", "会員番号,メールアドレス\nC1,a@example.jp\n", encoding="cp932"
    )
    result = kizuna(
        "import",
        "customers",
        str(path),
        "--map",
        "customer_id=会員番号",
        "--map",
        "email=メールアドレス",
        cwd=shop,
    )
    assert result.returncode == 0, result.stderr
    assert "Shift_JIS" in result.stderr and "1 new" in result.stdout


def test_kinds_and_settings_teach_the_formats(shop: Path) -> None:
    kinds = kizuna("kinds", cwd=shop)
    assert "order_lines" in kinds.stdout and "survey_answers" in kinds.stdout
    orders = kizuna("kinds", "orders", cwd=shop)
    assert "total_amount" in orders.stdout and "completed, cancelled" in orders.stdout
    settings = kizuna("settings", cwd=shop)
    assert "timezone" in settings.stdout and "Asia/Tokyo" in settings.stdout


def test_postgres_url_from_the_environment(tmp_path: Path) -> None:
    url = os.environ.get("KIZUNA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL case: set KIZUNA_TEST_POSTGRES_URL to run it")
    from tests.conftest import _reset_postgres

    _reset_postgres(url)
    env = {"KIZUNA_DATABASE_URL": url}
    assert kizuna("init", "pgshop", cwd=tmp_path, env=env).returncode == 0
    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    result = kizuna("-w", "pgshop", "import", "customers", "customers.csv", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "3 new" in result.stdout, result.stderr
    current = kizuna("-w", "pgshop", "db", "current", cwd=tmp_path, env=env)
    from kizuna.store.schema import head_revision

    assert f"database {head_revision()}; this Kizuna needs {head_revision()}" in current.stdout
    # The password never appears in what we print.
    shown = kizuna("-w", "pgshop", "settings", cwd=tmp_path, env=env).stdout
    password = url.split("@")[0].split(":")[-1]
    assert ":***@" in shown and f":{password}@" not in shown
