"""The recommendation dashboard page over HTTP (both backends) and in headless Chromium."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.recommend.recsample import AS_OF, load
from tests.web.webclient import PASSWORD, add_users, client, login

from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services import offers, recommendations, scoring
from kizuna.services.workspace import init_workspace
from kizuna.store import tables as t
from kizuna.web import create_dashboard_app


def _prepare(ctx: Context, folder: Path) -> str:
    """Sample data, a scoring run, a recommendation run and two offers; returns a buyer's id."""
    load(ctx, folder)
    scoring.score(ctx, AS_OF.date())
    recommendations.fit(ctx, AS_OF, with_als=True)
    offers.save_offer(ctx, offers.OfferSpec("NEWS", "新商品のご案内", "content", margin=800))
    offers.save_offer(ctx, offers.OfferSpec("VIP", "VIP特典", "content", margin=9_000,
                                            rules={"tiers": ["gold"]}))  # fmt: skip
    offers.assign(ctx, "first", limit=200)
    with ctx.engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(t.customers.c.external_id)
                .join(t.order_lines, t.order_lines.c.customer_id == t.customers.c.id)
                .order_by(t.customers.c.id)
                .limit(1)
            ).scalar_one()
        )


@pytest.mark.anyio
async def test_page_shows_quality_pairs_offers_and_a_customers_picks(
    workspace: Context, rec_sample: SampleSummary, anyio_backend: str
) -> None:
    buyer = _prepare(workspace, rec_sample.out_dir)
    add_users(workspace)
    app = create_dashboard_app(workspace)
    async with client(app) as http:
        await login(http, "analyst")
        page = await http.get("/recommend", params={"customer": buyer})
        assert page.status_code == 200
        html = page.text
        for testid in ("quality-table", "pairs-table", "offers-table", "customer-recommendations",
                       "customer-offers"):  # fmt: skip
            assert f'data-testid="{testid}"' in html
        assert 'data-model="similar"' in html and 'data-model="popular"' in html
        assert 'data-offer="NEWS"' in html
        with workspace.engine.connect() as conn:
            cid = recommendations.customer_id_of(conn, buyer)
            picks = recommendations.recommendations_for(conn, cid, 10)
            name = conn.execute(
                sa.select(t.customers.c.name).where(t.customers.c.id == cid)
            ).scalar_one()
        assert all(p.product_id in html for p in picks)
        assert name not in html  # analysts see personal data masked
        # The Customer 360 page shows the same top products in its own panel.
        profile = await http.get(f"/customers/{buyer}")
        assert 'data-testid="recommended"' in profile.text
        assert all(p.product_id in profile.text for p in picks[:5])
        missing = await http.get("/recommend", params={"customer": "NOPE"})
        assert missing.status_code == 200 and "NOPE" in missing.text
        quality = await http.get("/recommend/quality.csv")
        rows = list(csv.DictReader(io.StringIO(quality.content.decode("utf-8-sig"))))
        assert {r["model"] for r in rows} >= {"popular", "similar"}
        assert float(next(r for r in rows if r["model"] == "similar")["precision_at_10"]) > float(
            next(r for r in rows if r["model"] == "popular")["precision_at_10"]
        )
        for path in ("/recommend/pairs.csv", "/recommend/offers.csv"):
            response = await http.get(path)
            assert (
                response.status_code == 200
                and len(response.content.decode("utf-8-sig").splitlines()) > 1
            )
        mine = await http.get("/recommend/customer.csv", params={"customer": buyer})
        assert len(mine.content.decode("utf-8-sig").splitlines()) == 1 + len(picks)
        assert (
            await http.get("/recommend/customer.csv", params={"customer": "NOPE"})
        ).status_code == 404
        await http.get("/", params={"lang": "en"})
        english = await http.get("/recommend", headers={"Accept-Language": "en"})
        assert english.status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("recommend-browser")
    ctx = init_workspace(root / "ws")
    sample = generate(root / "sample", 1_500, seed=11)
    buyer = _prepare(ctx, sample.out_dir)
    add_users(ctx)
    ctx.dispose()
    with dashboard(root / "ws", root) as url:
        yield url, buyer


@pytest.mark.browser
@REQUIRES_CHROMIUM
def test_chromium_draws_the_quality_chart_and_a_customers_list_in_both_languages(
    server: tuple[str, str], tmp_path: Path
) -> None:
    url, buyer = server
    with (
        chromium() as browser,
        guarded_page(browser, allow_failed_loads=False, locale="ja-JP") as page,
    ):
        page.goto(f"{url}/")
        page.fill("input[name=username]", "marketer")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.click("nav.mainnav a[href='/recommend']")
        page.wait_for_selector("#quality-chart svg.main-svg")
        assert page.locator("h1").inner_text() == "おすすめとオファー"
        assert page.locator("[data-testid=quality-table] tbody tr").count() >= 2
        page.fill("input[name=customer]", buyer)
        page.press("input[name=customer]", "Enter")
        page.wait_for_selector("[data-testid=customer-recommendations]")
        assert page.locator("[data-testid=customer-recommendations] tbody tr").count() == 10
        page.click(".langswitch a[data-lang=en]")
        page.wait_for_selector("html[lang=en]")
        assert page.locator("h1").inner_text() == "Recommendations and offers"
        page.wait_for_selector("#quality-chart svg.main-svg")
        shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "recommend_page.png"), full_page=True)
