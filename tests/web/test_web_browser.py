"""The dashboard in a real headless Chromium, against uvicorn in a subprocess.

Every request the pages make is recorded; any that leaves 127.0.0.1 fails the
test (and is aborted), which proves the dashboard works with no internet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.web.webclient import PASSWORD, add_users

from kizuna.ingest.sample import generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.summary import workspace_summary
from kizuna.services.workspace import init_workspace
from kizuna.web.format import Formatter

pytestmark = [
    pytest.mark.browser,
    REQUIRES_CHROMIUM,
]

sync_api = pytest.importorskip("playwright.sync_api")


#: The overview's numbers as the service layer computes them (filled by ``server``).
EXPECTED: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn (through ``kizuna dashboard``) over a SQLite workspace with sample data."""
    root = tmp_path_factory.mktemp("browser")
    ctx = init_workspace(root / "ws")
    generate(root / "sample", 300, seed=7)
    import_paths(ctx, ImportFiles(files_in_folder(root / "sample")))
    add_users(ctx)
    summary = workspace_summary(ctx.engine, ctx.settings)
    EXPECTED["revenue"] = Formatter("ja_JP", "JPY", 0, "Asia/Tokyo").money(summary.revenue)
    EXPECTED["customers"] = f"{summary.counts['customers']:,}"
    ctx.dispose()
    with dashboard(root / "ws", root) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(
    browser: object, server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[object]:
    """A fresh Japanese-preferring page; fails if anything left 127.0.0.1 or a script failed.

    A refused import answers 422, which Chromium logs as a failed load; JS and
    CSP errors are what count. Screenshots are kept as artifacts when
    KIZUNA_TEST_ARTIFACTS names a folder.
    """
    with guarded_page(browser, locale="ja-JP") as p:
        yield p
        shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)


def _login(page: object, server: str, user: str = "marketer") -> None:
    page.goto(f"{server}/")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{server}/")  # type: ignore[attr-defined]


def test_login_draws_the_revenue_chart_and_switches_language(page: object, server: str) -> None:
    _login(page, server)
    page.wait_for_selector("#revenue-chart svg.main-svg")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "概要"  # type: ignore[attr-defined]
    shown = page.locator("[data-testid=revenue]").inner_text()  # type: ignore[attr-defined]
    assert shown == EXPECTED["revenue"] and shown.startswith("￥")
    customers = page.locator("[data-testid=count-customers]").inner_text()  # type: ignore[attr-defined]
    assert customers == EXPECTED["customers"]
    bars = page.locator("#revenue-chart g.point").count()  # type: ignore[attr-defined]
    assert bars > 12
    page.click(".langswitch a[data-lang=en]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=en]")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "Overview"  # type: ignore[attr-defined]
    page.wait_for_selector("#revenue-chart svg.main-svg")  # type: ignore[attr-defined]
    page.click(".langswitch a[data-lang=ja]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=ja]")  # type: ignore[attr-defined]


def test_search_a_customer_and_open_their_360(page: object, server: str) -> None:
    _login(page, server)
    page.click("nav.mainnav a[href='/customers']")  # type: ignore[attr-defined]
    page.fill("input[name=q]", "C0000042")  # type: ignore[attr-defined]
    page.press("input[name=q]", "Enter")  # type: ignore[attr-defined]
    page.click("a[href='/customers/C0000042']")  # type: ignore[attr-defined]
    page.wait_for_selector("[data-testid=timeline]")  # type: ignore[attr-defined]
    assert "C0000042" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    assert page.locator(".tl").count() > 0  # type: ignore[attr-defined]


def test_upload_a_bad_file_and_read_its_report(page: object, server: str, tmp_path: Path) -> None:
    bad = tmp_path / "orders.csv"
    bad.write_text(
        "order_id,customer_id,ordered_at,total_amount\n"
        "X1,C0000001,2025-01-01T10:00:00+09:00,1000\n"
        "X2,NO-SUCH-CUSTOMER,2025-01-02T10:00:00+09:00,500\n",
        encoding="utf-8",
    )
    _login(page, server)
    page.goto(f"{server}/data")  # type: ignore[attr-defined]
    page.select_option("select[name=kind]", "orders")  # type: ignore[attr-defined]
    page.set_input_files("input[name=file]", str(bad))  # type: ignore[attr-defined]
    page.click("form.upload button[type=submit]")  # type: ignore[attr-defined]
    report = page.wait_for_selector("[data-testid=report]")  # type: ignore[attr-defined]
    text = report.inner_text()
    assert "何も取り込んでいません" in text
    row = page.locator("table.problems tbody tr").first  # type: ignore[attr-defined]
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["orders.csv", "3", "customer_id"]
