"""The API, the dashboard pages and their CSV exports, and a real Chromium over uvicorn."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.api.apiclient import make_key
from tests.browser import REQUIRES_CHROMIUM, chromium, dashboard, guarded_page
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.web.webclient import PASSWORD, add_users, client, login

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import health, intent
from kizuna.services.workspace import init_workspace
from kizuna.web import create_dashboard_app

from .conftest import LAST_DAY, load_sample


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("small-sample"), 3_000, seed=3).out_dir


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def small(
    request: pytest.FixtureRequest, small_sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Context]:
    """A workspace with a small sample and a computed health run and intent week."""
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL case: set KIZUNA_TEST_POSTGRES_URL to run it")
    folder = tmp_path_factory.mktemp(f"small-{request.param}") / "ws"
    if request.param == "postgresql":
        _reset_postgres(POSTGRES_URL)
        ctx = init_workspace(folder, database_url=POSTGRES_URL)
    else:
        ctx = init_workspace(folder)
    load_sample(ctx, small_sample)
    health.compute(ctx, LAST_DAY)
    intent.compute(ctx, LAST_DAY)
    add_users(ctx)
    yield ctx
    ctx.dispose()


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    return body


def test_api_serves_health_intent_and_the_monthly_report(small: Context) -> None:
    key = make_key(small, "analyst")
    auth = {"Authorization": f"Bearer {key}"}
    accounts = health.account_list(small)
    first = accounts[0]["account"]
    with TestClient(create_app(small), raise_server_exceptions=False) as api:
        one = api.get(f"/v1/accounts/{first}/health", headers=auth)
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["account"] == first and body["score"] == accounts[0]["score"]
        assert set(body["components"]) == {
            "usage",
            "breadth",
            "support",
            "nps",
            "training",
            "renewal",
        }
        assert body["trend"][-1]["computed_on"] == LAST_DAY.isoformat()
        listed = api.get("/v1/accounts/health?band=at_risk", headers=auth).json()["accounts"]
        assert all(a["band"] == "at_risk" for a in listed)
        assert "no account" in str(
            _problem(api.get("/v1/accounts/A9999/health", headers=auth), 404)
        )
        assert api.get(f"/v1/accounts/{first}/health").status_code == 401

        expected = intent.surging(small)
        surging = api.get("/v1/intent/surging", headers=auth).json()["accounts"]
        assert [a["account"] for a in surging] == [a["account"] for a in expected]
        if expected:
            topic = expected[0]["topic"]
            only = api.get(f"/v1/intent/surging?topic={topic}", headers=auth).json()["accounts"]
            assert only and {a["topic"] for a in only} == {topic}
        assert api.get("/v1/intent/topics", headers=auth).json()["topics"]

        report = api.get("/v1/reports/monthly?month=2026-10&lang=en", headers=auth)
        assert report.status_code == 200, report.text
        assert report.headers["content-type"].startswith("text/html")
        assert "Monthly loyalty report" in report.text and "success.report" not in report.text
        _problem(api.get("/v1/reports/monthly?month=2026-13", headers=auth), 422)
        _problem(api.get("/v1/reports/monthly?month=October", headers=auth), 422)
        missing = _problem(api.get("/v1/reports/monthly?month=2019-01", headers=auth), 404)
        assert "2019-01" in str(missing)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_dashboard_pages_and_csv_exports(small: Context) -> None:
    app = create_dashboard_app(small)
    async with client(app) as http:
        await login(http, "analyst")
        for lang in ("ja", "en"):
            http.cookies.set("kizuna_lang", lang)
            page = await http.get("/success/health")
            assert page.status_code == 200 and 'data-testid="health-table"' in page.text
            assert "success." not in page.text.replace('"success_', "")
            assert (await http.get("/success/intent")).status_code == 200
            reports = await http.get("/success/reports")
            assert (
                reports.status_code == 200
                and "2026-10" in (await http.get("/success/reports?month=2026-10")).text
            )
        exported = await http.get("/success/health.csv")
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert [r["account"] for r in rows] == [a["account"] for a in health.account_list(small)]
        surging = await http.get("/success/intent.csv")
        assert surging.status_code == 200 and surging.text.lstrip("\ufeff").startswith("account,")
        download = await http.get("/success/reports/monthly.html?month=2026-10&lang=ja")
        assert download.status_code == 200 and "月次ロイヤルティレポート" in download.text
        assert "attachment" in download.headers["content-disposition"]
        assert (await http.get("/success/reports/monthly.html?month=2026-13")).status_code == 400
        assert (await http.get("/success/reports/monthly.html?month=2019-01")).status_code == 404


@REQUIRES_CHROMIUM
def test_chromium_loads_the_pages_in_both_languages(small: Context, tmp_path: Path) -> None:
    if not small.settings.is_sqlite:
        pytest.skip("one browser run is enough: the pages read through the same services")
    shots = Path(os.environ.get("KIZUNA_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with dashboard(small.settings.workspace, tmp_path) as url, chromium() as browser:
        for lang in ("ja", "en"):
            locale = "ja-JP" if lang == "ja" else "en-US"
            with guarded_page(browser, allow_failed_loads=True, locale=locale) as page:
                page.goto(f"{url}/login")
                page.fill("input[name=username]", "marketer")
                page.fill("input[name=password]", PASSWORD)
                page.click("form.stack button[type=submit]")
                page.wait_for_url(f"{url}/")
                page.context.add_cookies([{"name": "kizuna_lang", "value": lang, "url": url}])
                for path, marker in (
                    ("/success/health", "[data-testid=health-table]"),
                    ("/success/intent", "[data-testid=topics-table]"),
                    ("/success/reports", "[data-testid=report-form]"),
                ):
                    page.goto(f"{url}{path}")
                    page.wait_for_selector(marker)
                    text = page.inner_text("body")
                    assert "success." not in text, (lang, path)
                    name = path.strip("/").replace("/", "-")
                    page.screenshot(path=str(shots / f"{name}-{lang}.png"), full_page=True)
                page.goto(f"{url}/success/health")
                page.wait_for_selector("#health-chart .main-svg")
                title = page.inner_text("h1")
                assert title == (
                    "アカウントヘルスとタッチモデル"
                    if lang == "ja"
                    else "Account health and touch models"
                )
                with page.expect_download() as download:
                    page.goto(f"{url}/success/reports")
                    page.click("[data-testid=report-form] button.ghost")
                saved = tmp_path / f"report-{lang}.pdf"
                download.value.save_as(saved)
                assert saved.read_bytes()[:5] == b"%PDF-"


def test_a_journey_mails_the_report_to_its_recipients_once_a_month(small: Context) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from tests.automation.smtp_sink import smtp_sink
    from typer.testing import CliRunner

    from kizuna.automation.worker import run_worker
    from kizuna.cli import app
    from kizuna.reports.due import announce
    from kizuna.services import journeys, segments
    from kizuna.services.uow import UnitOfWork
    from kizuna.store import tables as t

    now = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
    with small.engine.connect() as conn:
        people = conn.execute(
            sa.select(t.customers.c.external_id, t.customers.c.email)
            .where(t.customers.c.email.isnot(None))
            .order_by(t.customers.c.id)
            .limit(2)
        ).all()
    names = [p[0] for p in people]
    uow = lambda: UnitOfWork(small.engine, small.settings)  # noqa: E731
    segments.handle_save(
        segments.SaveSegment(
            {
                "name": "report-recipients",
                "rule": {"field": "external_id", "op": "in", "value": names},
            }
        ),
        uow(),
    )
    doc = {
        "name": "monthly-report", "holdout_percent": 0, "trigger": {"event": "loyalty_report_due"},
        "steps": [{"id": "mail", "action": "send_report", "lang": "en", "month": "previous"}],
    }  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow())
    journeys.set_status("monthly-report", "active", uow())
    assert announce(small, "report-recipients", date(2026, 10, 1), now=now) == 2
    target = (
        small.settings.database_url
        if not small.settings.is_sqlite
        else str(small.settings.workspace)
    )
    again = CliRunner().invoke(
        app, ["-w", target, "report-due", "report-recipients", "--month", "2026-10"]
    )
    assert again.exit_code == 0 and "due for 0 new" in again.output, again.output
    with smtp_sink() as (sink, port):
        mailing = Context(replace(small.settings, smtp_port=port))
        try:
            run_worker(mailing, once=True, clock=lambda: now, worker_id="w")
            run_worker(mailing, once=True, clock=lambda: now.replace(minute=45), worker_id="w")
        finally:
            mailing.dispose()
    assert sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in sink.messages) == sorted(
        p[1] for p in people
    )
    for msg in sink.messages:
        assert msg["Subject"] == "Monthly loyalty report 2026-10"
        (attachment,) = [a for a in msg.iter_attachments()]
        assert attachment.get_filename() == "kizuna-loyalty-report-2026-10-en.html"
        assert "What went up" in attachment.get_content()
