"""The voice pages over HTTP: every role, both languages, masking and CSV exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from tests.helpers import add
from tests.web.webclient import add_users, client, login

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.services import journeys, surveys
from kizuna.services.survey_links import issue_link, submit_answer
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.web import create_dashboard_app

PAGES = ("/voice/themes", "/voice/trends", "/voice/detractors", "/voice/surveys")
EXPORTS = ("/voice/themes.csv", "/voice/terms.csv", "/voice/trends.csv", "/voice/churn.csv",
           "/voice/detractors.csv", "/voice/surveys.csv")  # fmt: skip
COMMENTS = [
    ("配送が遅い。連絡は taro@example.jp か 090-1234-5678 まで", 2),
    ("対応がとても丁寧でした", 10),
    ("The app is slow and hard to use", 3),
    ("Great quality, fast delivery", 9),
]


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


@pytest.fixture
def voice_app(workspace: Context) -> FastAPI:
    add_users(workspace)
    now = datetime.now(UTC) - timedelta(hours=1)
    surveys.save_survey(
        uow(workspace), {"key": "nps", "kind": "nps", "title": {"ja": "推奨度", "en": "Recommend"}}
    )
    loop = {"name": "loop", "holdout_percent": 0, "trigger": {"event": "survey_detractor"},
            "steps": [{"id": "call", "action": "create_task", "title": "Call {{ name }}"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(loop), uow(workspace))
    journeys.set_status("loop", "active", uow(workspace))
    with workspace.engine.begin() as conn:
        ids = [
            add(conn, t.customers, external_id=f"c{i}", name=f"山田 太郎{i}",
                email=f"c{i}@example.jp", language="ja")
            for i in range(len(COMMENTS))
        ]  # fmt: skip
    for cid, (text, score) in zip(ids, COMMENTS, strict=True):
        with workspace.engine.begin() as conn:
            token = issue_link(conn, workspace.settings, "nps", cid, now=now).token
        submit_answer(uow(workspace), token, str(score), text, now=now)
    # The journey, active before the answers, gives each detractor a task.
    run_worker(workspace, once=True, clock=lambda: datetime.now(UTC), worker_id="w")
    return create_dashboard_app(workspace)


@pytest.mark.anyio
@pytest.mark.parametrize("role", ["admin", "marketer", "analyst"])
async def test_every_role_opens_every_voice_page_in_both_languages(
    voice_app: FastAPI, role: str
) -> None:
    async with client(voice_app) as http:
        await login(http, role)
        for lang in ("ja", "en"):
            http.cookies.set("kizuna_lang", lang)
            for page in PAGES:
                response = await http.get(page)
                assert response.status_code == 200, (page, response.text[:500])
                assert not re.search(r">voice\.[a-z_.]+<", response.text)  # no missing keys
        themes = await http.get("/voice/themes")
        assert "What detractors say more than promoters" in themes.text
        assert "遅い" in themes.text and 'data-theme="delivery"' in themes.text


@pytest.mark.anyio
async def test_detractor_comments_show_follow_up_and_mask_contact_details_for_analysts(
    voice_app: FastAPI,
) -> None:
    async with client(voice_app, **{"accept-language": "en"}) as http:
        await login(http, "marketer")
        page = await http.get("/voice/detractors")
        assert "taro@example.jp" in page.text and "山田 太郎0" in page.text
        assert page.text.count('data-follow-up="open"') == 2  # both detractors got a task
        assert "Call 山田 太郎0" in page.text
        export = await http.get("/voice/detractors.csv")
        rows = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
        assert {r["follow_up"] for r in rows} == {"open"} and len(rows) == 2
    async with client(voice_app, **{"accept-language": "en"}) as http:
        await login(http, "analyst")
        page = await http.get("/voice/detractors")
        assert "taro@example.jp" not in page.text and "1234-5678" not in page.text
        assert "山田 *" in page.text and "配送が遅い" in page.text
        export = await http.get("/voice/detractors.csv")
        assert "taro@example.jp" not in export.text and "c0@example.jp" not in export.text
        assert "c***@example.jp" in export.text


@pytest.mark.anyio
async def test_every_table_exports_csv(voice_app: FastAPI) -> None:
    async with client(voice_app) as http:
        await login(http, "analyst")
        for path in EXPORTS:
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/csv")
            rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
            assert len(rows) >= 2, path
        surveys_csv = await http.get("/voice/surveys.csv")
        row = next(csv.DictReader(io.StringIO(surveys_csv.text.lstrip("\ufeff"))))
        assert (row["survey"], row["answered"], row["detractors"], row["promoters"]) == (
            "nps", "4", "2", "2",
        )  # fmt: skip


@pytest.mark.anyio
async def test_voice_pages_need_a_login(workspace: Context) -> None:
    app = create_dashboard_app(workspace)
    async with client(app) as http:
        for page in PAGES:
            response = await http.get(page)
            assert response.status_code == 303 and "/login" in response.headers["location"]
