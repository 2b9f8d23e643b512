"""The analytics pages (KPIs, loyalty matrix, RFM, cohorts, lifecycle) through
HTTP on SQLite and PostgreSQL: the numbers on each page and in each CSV are
those of the analytics queries, in Japanese and English, with personal data
masked for analysts on the matrix drill-down."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.web.webclient import PASSWORD, add_users, client, csrf_of, login

from kizuna.analytics.lifecycle import LABELS as STAGE_LABELS
from kizuna.analytics.loyalty import CLASSES
from kizuna.analytics.loyalty import LABELS as LOYALTY_LABELS
from kizuna.analytics.rfm import SEGMENTS_BY_KEY
from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import analytics_queries as queries
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.scoring import RunInfo, score
from kizuna.services.users import audit_log
from kizuna.store import tables
from kizuna.web import create_dashboard_app
from kizuna.web.format import Formatter
from kizuna.web.i18n import catalogue
from kizuna.web.masking import mask_email, mask_name
from kizuna.web.nav import NAV
from kizuna.web.routes import analytics as analytics_routes

try:  # the browser fixtures (a dashboard subprocess over sample data, Chromium)
    from tests.browser import CHROMIUM
    from tests.web.test_web_browser import browser, page, server  # noqa: F401
except pytest.skip.Exception:  # Playwright is missing: only the browser test skips
    CHROMIUM = ""

pytestmark = pytest.mark.anyio

AS_OF = date(2026, 10, 31)
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")
JA = Formatter("ja_JP", "JPY", 0, "Asia/Tokyo")


@dataclass
class Scored:
    app: FastAPI
    ctx: Context
    run: RunInfo


def _load_sample(ctx: Context, folder: Path) -> None:
    generate(folder, 300, seed=3)
    import_paths(ctx, ImportFiles(files_in_folder(folder)))


@pytest.fixture
def scored(workspace: Context, tmp_path: Path) -> Scored:
    """A small sample, imported and scored as of the sample's last day."""
    add_users(workspace)
    _load_sample(workspace, tmp_path / "sample")
    run, _ = score(workspace, as_of=AS_OF)
    return Scored(create_dashboard_app(workspace), workspace, run)


def _testid(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', page, re.S)
    assert match, f"no element with data-testid={testid}"
    return html.unescape(match.group(1)).strip()


def _row(page: str, attr: str, value: str) -> list[str]:
    """The cells of the table row carrying ``attr="value"``."""
    match = re.search(rf'<tr {attr}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert match, f"no row {attr}={value}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


@asynccontextmanager
async def _session(app: FastAPI, role: str, lang: str = "en") -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        http.cookies.set("kizuna_lang", lang)
        await login(http, role)
        yield http


async def test_kpi_page_shows_the_run_and_the_monthly_kpis(scored: Scored) -> None:
    kpis = scored.run.kpis
    monthly = queries.kpi_frame(scored.ctx, monthly=True)
    async with _session(scored.app, "analyst") as http:
        page = (await http.get("/analytics/kpis")).text
        assert _testid(page, "nps") == f"{kpis['nps']['nps']:.1f}"
        assert f"± {kpis['nps']['margin_of_error']:.1f} points" in _testid(page, "nps-margin")
        assert _testid(page, "repeat-rate") == EN.percent(kpis["repeat"]["repeat_rate"])
        assert _testid(page, "historical-ltv") == EN.money(round(kpis["historical_ltv"]))
        assert _testid(page, "loyal-share") == EN.percent(kpis["loyal_revenue_share"])
        last = monthly.dropna(subset=["retention_rate"]).iloc[-1]
        assert _testid(page, "retention-rate") == EN.percent(last["retention_rate"])
        assert _testid(page, "churn-rate") == EN.percent(last["churn_rate"])
        row = _row(page, "data-month", "2026-10")
        oct_ = monthly[monthly.month == "2026-10"].iloc[0]
        assert row[2] == f"{oct_['nps']:.1f}" and row[3] == f"{oct_['margin_of_error']:.1f}"
        assert row[5] == EN.percent(oct_["repeat_rate"])
        assert 'id="nps-figure"' in page and '"fill": "tonexty"' in page
        exported = _csv(await http.get("/analytics/kpis.csv"))
        assert [r["month"] for r in exported] == list(monthly["month"])
        assert float(exported[-1]["nps"]) == pytest.approx(oct_["nps"])
        assert float(exported[-1]["margin_of_error"]) == pytest.approx(oct_["margin_of_error"])
    async with _session(scored.app, "marketer", "ja") as http:
        page = (await http.get("/analytics/kpis")).text
        assert "ロイヤルティ指標" in page and "ポイント（95%）" in page
        assert _testid(page, "repeat-rate") == JA.percent(kpis["repeat"]["repeat_rate"])


async def test_matrix_rfm_cohorts_and_lifecycle_show_the_query_numbers(scored: Scored) -> None:
    scores = queries.scores_frame(scored.ctx)
    grouped = scores.groupby("loyalty")["total_amount"]
    sizes = {str(k): int(v) for k, v in grouped.size().items()}
    sums = {str(k): int(v) for k, v in grouped.sum().items()}
    segments = queries.segment_table(scored.ctx)
    cohorts = queries.cohort_frame(scored.ctx)
    trend, moves = queries.lifecycle_frames(scored.ctx)
    async with _session(scored.app, "marketer", "ja") as http:
        page = (await http.get("/analytics/matrix")).text
        for c in CLASSES:
            n = sizes.get(c, 0)
            assert n == scored.run.kpis["loyalty_counts"][c]
            assert _testid(page, f"cell-{c}") == JA.number(n)
            assert LOYALTY_LABELS[c]["ja"] in page
            assert _row(page, "data-class", c)[3] == JA.money(sums.get(c, 0))
        exported = _csv(await http.get("/analytics/matrix.csv"))
        assert {r["loyalty"]: int(r["customers"]) for r in exported} == (
            scored.run.kpis["loyalty_counts"]
        )

        page = (await http.get("/analytics/rfm")).text
        for seg in segments:
            row = _row(page, "data-segment", seg["segment"])
            assert row[0] == SEGMENTS_BY_KEY[seg["segment"]].ja
            assert row[1] == JA.number(seg["customers"])
            assert row[3] == JA.money(round(seg["mean_spend"]))
        exported = _csv(await http.get("/analytics/rfm.csv"))
        assert [(r["segment"], int(r["customers"])) for r in exported] == [
            (s["segment"], s["customers"]) for s in segments
        ]
        assert exported[0]["ja"] == SEGMENTS_BY_KEY[segments[0]["segment"]].ja

        page = (await http.get("/analytics/cohorts")).text
        first = str(cohorts.index[0])
        row = _row(page, "data-cohort", first)
        assert row[1] == JA.number(int(cohorts.iloc[0]["customers"]))
        assert row[3] == JA.percent(float(cohorts.iloc[0][1]))
        assert '"type": "heatmap"' in page
        exported = _csv(await http.get("/analytics/cohorts.csv"))
        assert len(exported) == len(cohorts) and exported[0]["cohort"] == first
        assert float(exported[0]["month_1"]) == pytest.approx(float(cohorts.iloc[0][1]))
        # A month the data covers in which nobody of the cohort bought is 0%, not blank;
        # months after the data ends stay blank.
        gaps = [a for a in cohorts.columns[1:] if pd.isna(cohorts.iloc[0][a])]
        assert gaps and exported[0][f"month_{gaps[0]}"] == "0.0"
        assert exported[-1]["month_1"] == ""

        page = (await http.get("/analytics/lifecycle")).text
        month = str(trend.index[-1])
        assert _row(page, "data-month", month)[1:] == [JA.number(int(v)) for v in trend.iloc[-1]]
        assert STAGE_LABELS["lapsed"]["ja"] in page and '"type": "sankey"' in page
        exported = _csv(await http.get("/analytics/lifecycle.csv"))
        assert exported[-1]["month"] == month
        assert {k: int(v) for k, v in exported[-1].items() if k != "month"} == {
            str(k): int(v) for k, v in trend.iloc[-1].items()
        }
        moved = _csv(await http.get("/analytics/lifecycle/transitions.csv"))
        assert sum(int(r["customers"]) for r in moved) == int(moves.to_numpy().sum())


async def test_matrix_drilldown_pages_and_masks_personal_data_for_analysts(
    scored: Scored,
) -> None:
    counts = scored.run.kpis["loyalty_counts"]
    cell = max(counts, key=lambda c: counts[c])
    assert counts[cell] > analytics_routes.PAGE_SIZE
    scores = queries.scores_frame(scored.ctx)
    ids = sorted(scores[scores.loyalty == cell]["customer_id"])
    with scored.ctx.engine.connect() as conn:
        people = {
            r.external_id: r
            for r in conn.execute(
                sa.select(
                    tables.customers.c.external_id,
                    tables.customers.c.name,
                    tables.customers.c.email,
                )  # fmt: skip
            )
        }
    first = people[ids[0]]
    assert first.email and first.name
    async with _session(scored.app, "marketer") as http:
        page = (await http.get(f"/analytics/matrix/customers?cell={cell}")).text
        assert f'href="/customers/{ids[0]}"' in page and html.escape(first.email) in page
        assert page.count('<tr>\n        <td><a href="/customers/') == analytics_routes.PAGE_SIZE
        nxt = re.search(r'rel="next" href="([^"]+)"', page)
        assert nxt, "no next page link"
        second = (await http.get(html.unescape(nxt.group(1)))).text
        assert f'href="/customers/{ids[analytics_routes.PAGE_SIZE]}"' in second
        exported = _csv(await http.get(f"/analytics/matrix/customers.csv?cell={cell}"))
        assert [r["customer_id"] for r in exported] == ids
        assert exported[0]["email"] == first.email
        assert (await http.get("/analytics/matrix/customers?cell=bogus")).status_code == 404
        bogus = await http.get("/analytics/matrix/customers.csv?cell=bogus")
        assert bogus.status_code == 404
    async with _session(scored.app, "analyst") as http:
        page = (await http.get(f"/analytics/matrix/customers?cell={cell}")).text
        assert html.escape(first.email) not in page
        assert html.escape(str(mask_email(first.email))) in page
        assert html.escape(str(mask_name(first.name))) in page
        exported = _csv(await http.get(f"/analytics/matrix/customers.csv?cell={cell}"))
        assert exported[0]["email"] == mask_email(first.email)
        assert all(r["email"] != people[r["customer_id"]].email for r in exported)
    exports = [e for e in audit_log(scored.ctx.engine) if e["action"] == "export"]
    assert sorted(
        (e["username"], e["detail"]["masked"], e["detail"]["rows"])
        for e in exports
        if e["detail"]["table"] == "loyalty_cell"
    ) == [("analyst", True, len(ids)), ("marketer", False, len(ids))]


async def test_without_a_scoring_run_the_pages_ask_for_one_and_editors_can_run_it(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    add_users(sqlite_workspace)
    _load_sample(sqlite_workspace, tmp_path / "sample")
    app = create_dashboard_app(sqlite_workspace)
    async with _session(app, "analyst") as http:
        for path in ("/analytics/kpis", "/analytics/matrix", "/analytics/rfm"):
            page = (await http.get(path)).text
            assert "kizuna score" in page and 'data-testid="no-run"' in page, path
            assert 'action="/analytics/score"' not in page
        token = csrf_of((await http.get("/data")).text)
        refused = await http.post("/analytics/score", data={"csrf_token": token})
        assert refused.status_code == 403
        for path in ("/analytics/matrix.csv", "/analytics/rfm.csv"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.get("/analytics/matrix/customers.csv?cell=true")).status_code == 404
    async with _session(app, "marketer", "ja") as http:
        page = (await http.get("/analytics/matrix")).text
        assert catalogue("ja")["analytics.no_run"] in page
        assert 'action="/analytics/score"' in page
        assert (await http.post("/analytics/score", data={})).status_code == 403  # no CSRF
        token = csrf_of(page)
        done = await http.post("/analytics/score", data={"csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/analytics/kpis"
        page = (await http.get("/analytics/kpis")).text
        assert 'data-testid="nps"' in page and "no-run" not in page


def _keys(text: str) -> Iterator[str]:
    yield from re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", text)
    yield from re.findall(r'_key="([a-z_.]+)"', text)


def test_every_analytics_key_is_in_both_catalogues() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    templates = Path(analytics_routes.__file__).parents[1] / "templates"
    used = {
        k
        for path in [*templates.glob("analytics_*.html"), Path(analytics_routes.__file__)]
        for k in _keys(path.read_text())
    }
    used |= {n.label_key for n in NAV if n.path.startswith("/analytics")}
    assert {"nav.matrix", "analytics.no_run", "analytics.title_kpis"} <= used
    assert sorted(k for k in used if k not in ja or k not in en) == []
    assert [k for k in en if k.startswith("analytics.")] == [
        k for k in ja if k.startswith("analytics.")
    ]


async def test_on_an_empty_workspace_every_analytics_page_answers(dashboard: FastAPI) -> None:
    async with _session(dashboard, "admin") as http:
        for path in (
            "/analytics/kpis",
            "/analytics/matrix",
            "/analytics/rfm",
            "/analytics/cohorts",
            "/analytics/lifecycle",
        ):
            response = await http.get(path)
            assert response.status_code == 200, path
        for path in (
            "/analytics/kpis.csv",
            "/analytics/cohorts.csv",
            "/analytics/lifecycle.csv",
            "/analytics/lifecycle/transitions.csv",
        ):
            assert len(_csv(await http.get(path))) == 0, path


# Last in the module on purpose: Playwright's sync API keeps its own event loop
# in this thread until the module-scoped browser closes, which breaks anyio's
# runner for any async test collected after it.
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM or not Path(CHROMIUM).exists(), reason="needs Chromium")
def test_browser_runs_scoring_then_opens_the_matrix_and_a_cell(page: object, server: str) -> None:
    p: Any = page
    p.goto(f"{server}/analytics/matrix")
    p.fill("input[name=username]", "marketer")
    p.fill("input[name=password]", PASSWORD)
    p.click("form.stack button[type=submit]")
    p.wait_for_selector("[data-testid=no-run]")
    p.click("[data-testid=run-scoring]")
    p.wait_for_url(f"{server}/analytics/kpis", timeout=120_000)
    p.wait_for_selector("#nps-chart svg.main-svg")
    p.click("nav.mainnav a[href='/analytics/matrix']")
    true_count = p.locator("[data-testid=cell-true]").inner_text()
    assert int(true_count.replace(",", "")) > 0
    p.click("a.lm-cell[data-cell=true]")
    p.wait_for_selector("[data-testid=cell-table]")
    assert p.locator("h1").inner_text() == LOYALTY_LABELS["true"]["ja"]
    p.locator("[data-testid=cell-table] tbody a").first.click()
    p.wait_for_selector("[data-testid=timeline]")
    for path, chart in (
        ("/analytics/rfm", "#rfm-chart"),
        ("/analytics/cohorts", "#cohort-chart"),
        ("/analytics/lifecycle", "#sankey-chart"),
    ):
        p.goto(f"{server}{path}")
        p.wait_for_selector(f"{chart} svg.main-svg")
    assert p.locator("#sankey-chart path.sankey-link").count() > 0
