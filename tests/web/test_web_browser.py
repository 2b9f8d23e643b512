"""The dashboard in a real headless Chromium, against uvicorn in a subprocess.

Every request the pages make is recorded; any that leaves 127.0.0.1 fails the
test (and is aborted), which proves the dashboard works with no internet.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.web.webclient import PASSWORD, add_users

from kizuna.ingest.sample import generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.summary import workspace_summary
from kizuna.services.workspace import init_workspace
from kizuna.web.format import Formatter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


#: The overview's numbers as the service layer computes them (filled by ``server``).
EXPECTED: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn (through ``kizuna dashboard``) over a SQLite workspace with sample data."""
    root = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    ctx = init_workspace(root / "ws")
    generate(root / "sample", 300, seed=7)
    import_paths(ctx, ImportFiles(files_in_folder(root / "sample")))
    add_users(ctx)
    summary = workspace_summary(ctx.engine, ctx.settings)
    EXPECTED["revenue"] = Formatter("ja_JP", "JPY", 0, "Asia/Tokyo").money(summary.revenue)
    EXPECTED["customers"] = f"{summary.counts['customers']:,}"
    ctx.dispose()
    port = _free_port()
    kizuna = shutil.which("kizuna", path=str(Path(sys.executable).parent)) or "kizuna"
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [kizuna, "-w", str(root / "ws"), "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "server.log").read_text(errors="replace"))
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(
    browser: object, server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[object]:
    """A fresh Japanese-preferring browser context; fails if anything left 127.0.0.1."""
    context = browser.new_context(locale="ja-JP", extra_http_headers={})  # type: ignore[attr-defined]
    outside: list[str] = []
    requested: list[str] = []

    def guard(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        requested.append(url)
        if urlsplit(url).hostname != "127.0.0.1" and not url.startswith(("data:", "blob:")):
            outside.append(url)
            route.abort()  # type: ignore[attr-defined]
        else:
            route.continue_()  # type: ignore[attr-defined]

    context.route("**/*", guard)
    p = context.new_page()
    errors: list[str] = []
    # A refused import answers 422, which Chromium logs; JS and CSP errors are what count.
    p.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_default_timeout(15_000)
    yield p
    # Screenshots are kept as artifacts when KIZUNA_TEST_ARTIFACTS names a folder.
    shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert requested, "no request was recorded"
    assert outside == [], f"the dashboard requested other hosts: {outside}"
    assert errors == [], f"the page logged errors (a CSP violation?): {errors}"


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
