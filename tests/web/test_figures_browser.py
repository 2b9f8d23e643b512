"""Chromium sees how old the overview's figures are, in Japanese and English.

``kizuna dashboard`` in a subprocess over a SQLite workspace; the test writes
orders into the same workspace as a till would, and the page then says the
figures are as of an earlier time, that newer ones are being computed, and
offers a marketer "refresh now" while the bound on recomputes holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.web.webclient import PASSWORD, add_users

from kizuna.bootstrap import Context
from kizuna.config import load_settings
from kizuna.ingest.sample import generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace

pytestmark = [pytest.mark.browser, REQUIRES_CHROMIUM]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("figures")
    ctx = init_workspace(root / "ws")
    generate(root / "sample", 200, seed=11)
    import_paths(ctx, ImportFiles(files_in_folder(root / "sample")))
    add_users(ctx)
    ctx.dispose()
    with dashboard(root / "ws", root) as url:
        yield url, root / "ws"


def _earn(workspace: Path, order_id: str) -> None:
    """An order from the till, written by another process than the dashboard."""
    ctx = Context(load_settings(workspace, env={}))
    now = datetime.now(UTC)
    try:
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            record_order(
                uow,
                RecordOrder(order_id, "C0000001", (OrderLine(1, 5_000),), ordered_at=now),
                now=now,
            )
    finally:
        ctx.dispose()


def _as_of(page: Any) -> str:
    return str(page.locator(".figures-as-of").inner_text())


def _until(page: Any, url: str, check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check(_as_of(page)):
        assert time.monotonic() < deadline, _as_of(page)
        time.sleep(0.5)
        page.goto(url)


def test_the_as_of_line_in_both_languages_and_refresh_now(
    shop: tuple[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, workspace = shop
    with chromium() as browser, guarded_page(browser, locale="ja-JP") as page:
        page.goto(f"{url}/")
        page.fill("input[name=username]", "marketer")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_url(f"{url}/")
        # Computed on this first view: current, nothing to update.
        assert "時点の集計" in _as_of(page) and "更新中" not in _as_of(page)
        # A till writes: the page answers from the stored figures at once.
        _earn(workspace, "TILL-1")
        page.goto(f"{url}/")
        assert "時点の集計" in _as_of(page) and "更新中…" in _as_of(page)
        _until(page, f"{url}/", lambda text: "更新中" not in text)
        # Another write within dashboard_refresh_seconds: shown as stored,
        # and a marketer may ask for the recompute now.
        _earn(workspace, "TILL-2")
        page.click(".langswitch a[data-lang=en]")
        page.wait_for_selector("html[lang=en]")
        assert "Figures as of" in _as_of(page) and "updating…" not in _as_of(page)
        page.click(".figures-as-of button[type=submit]")
        page.wait_for_url(f"{url}/")
        assert "Figures as of" in _as_of(page)
        assert "updating…" in _as_of(page) or "Refresh now" not in _as_of(page)
        _until(page, f"{url}/", lambda text: "updating" not in text and "Refresh" not in text)
        shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
