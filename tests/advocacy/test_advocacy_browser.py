"""The advocacy pages in a real headless Chromium against uvicorn (``kizuna dashboard``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.advocacy.seed import seed
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.web.webclient import PASSWORD, add_users

from kizuna.services import users
from kizuna.services.workspace import init_workspace

pytestmark = [
    REQUIRES_CHROMIUM,
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("advocacy-browser")
    ctx = init_workspace(root / "ws")
    seed(ctx)
    previous, users.SCRYPT_N = users.SCRYPT_N, 2**10
    try:
        add_users(ctx)
    finally:
        users.SCRYPT_N = previous
    ctx.dispose()
    with dashboard(root / "ws", root) as url:
        yield url


@pytest.fixture
def page(server: str) -> Iterator[object]:
    with chromium() as browser, guarded_page(browser, locale="ja-JP") as pg:
        yield pg


def test_advocacy_pages_load_draw_and_moderate(page: object, server: str) -> None:
    p = page
    p.goto(f"{server}/")  # type: ignore[attr-defined]
    p.fill("input[name=username]", "marketer")  # type: ignore[attr-defined]
    p.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    p.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    p.wait_for_url(f"{server}/")  # type: ignore[attr-defined]
    p.click("nav.mainnav a[href='/advocacy/ambassadors']")  # type: ignore[attr-defined]
    p.wait_for_selector("#pipeline-chart svg.main-svg")  # type: ignore[attr-defined]
    assert p.locator("h1").inner_text() == "アンバサダー"  # type: ignore[attr-defined]
    assert p.locator("[data-testid=ambassadors-table] tr[data-status=active]").count() == 1  # type: ignore[attr-defined]
    p.click("[data-testid=advocacy-tabs] a[href='/advocacy/referrals']")  # type: ignore[attr-defined]
    assert "紹介者とメールアドレスが一致" in p.locator("[data-testid=referrals-table]").inner_text()  # type: ignore[attr-defined]
    p.click("[data-testid=advocacy-tabs] a[href='/advocacy/events']")  # type: ignore[attr-defined]
    p.wait_for_selector("#events-chart svg.main-svg")  # type: ignore[attr-defined]
    p.click("a[href='/advocacy/events/ev1']")  # type: ignore[attr-defined]
    assert p.locator("[data-testid=registrations-table] tbody tr").count() == 2  # type: ignore[attr-defined]
    p.click("[data-testid=advocacy-tabs] a[href='/advocacy/reviews']")  # type: ignore[attr-defined]
    p.click("[data-testid=approve-r1]")  # type: ignore[attr-defined]
    p.wait_for_url(f"{server}/advocacy/reviews?status=pending")  # type: ignore[attr-defined]
    assert p.locator("tr[data-review=r1]").count() == 0  # type: ignore[attr-defined]
    p.click(".langswitch a[data-lang=en]")  # type: ignore[attr-defined]
    p.wait_for_selector("html[lang=en]")  # type: ignore[attr-defined]
    assert p.locator("h1").inner_text() == "Review moderation"  # type: ignore[attr-defined]
