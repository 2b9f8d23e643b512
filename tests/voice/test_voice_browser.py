"""The voice pages and the public survey page in a real headless Chromium (uvicorn subprocess).

The public page is answered on a phone-sized viewport without logging in;
the dashboard pages must draw their Plotly charts, and nothing may be
requested from any host but 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.web.webclient import PASSWORD, add_users

from kizuna.ingest.sample import generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.survey_links import issue_link
from kizuna.services.surveys import save_survey
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace

pytestmark = [
    REQUIRES_CHROMIUM,
]
sync_api = pytest.importorskip("playwright.sync_api")
TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("voice-browser")
    ctx = init_workspace(root / "ws")
    generate(root / "sample", 200, seed=11)
    import_paths(ctx, ImportFiles(files_in_folder(root / "sample")))
    add_users(ctx)
    survey = {"key": "nps", "kind": "nps", "title": {"ja": "お店の評価", "en": "Rate us"}}
    save_survey(UnitOfWork(ctx.engine, ctx.settings), survey)
    with ctx.engine.begin() as conn:
        TOKENS["ja"] = issue_link(conn, ctx.settings, "nps", 1, now=datetime.now(UTC)).token
    ctx.dispose()
    with dashboard(root / "ws", root) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_dashboard_voice_pages_draw_their_charts(browser: object, server: str) -> None:
    with guarded_page(browser, locale="ja-JP") as page:
        page.set_default_timeout(20_000)
        page.goto(f"{server}/")
        page.fill("input[name=username]", "analyst")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_url(f"{server}/")
        page.click("nav.mainnav a[href='/voice/themes']")
        page.wait_for_selector("#terms-chart svg.main-svg")
        assert page.locator("h1").inner_text() == "フィードバックのテーマ"
        assert page.locator("[data-testid=themes-table] tbody tr").count() == 7
        page.click("[data-testid=voice-tabs] a[href='/voice/trends']")
        page.wait_for_selector("#trends-chart svg.main-svg")
        assert page.locator("[data-testid=churn-table] tbody tr").count() == 7
        page.click("[data-testid=voice-tabs] a[href='/voice/detractors']")
        page.wait_for_selector("h1")
        page.click("[data-testid=voice-tabs] a[href='/voice/surveys']")
        page.wait_for_selector("[data-testid=surveys-table] tr[data-survey=nps]")
        page.click(".langswitch a[data-lang=en]")
        page.wait_for_selector("html[lang=en]")
        assert page.locator("h1").inner_text() == "Surveys"


def test_public_survey_page_on_a_phone_without_login(browser: object, server: str) -> None:
    with guarded_page(
        browser, locale="en-US", viewport={"width": 375, "height": 740}, is_mobile=True
    ) as page:
        page.set_default_timeout(20_000)
        response = page.goto(f"{server}/survey/{TOKENS['ja']}?lang=ja")
        assert response.status == 200
        assert "すすめる可能性" in page.locator("legend").first.inner_text()
        # Every score button fits the phone's width: no sideways scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        page.click("label:has(input[value='9'])")
        page.fill("textarea[name=comment]", "スタッフの対応がとても丁寧でした")
        page.click("button[type=submit]")
        page.wait_for_selector("#thanks")
        assert "ありがとうございました" in page.locator("h1").inner_text()
        bad = page.goto(f"{server}/survey/{TOKENS['ja'][:-2]}xx")
        assert bad.status == 400
        assert page.locator("#closed").get_attribute("data-reason") == "invalid"
