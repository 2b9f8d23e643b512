"""The advocacy dashboard pages over HTTP: both languages, masking, exports, moderation."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from tests.advocacy.seed import seed
from tests.web.webclient import add_users, client, login

from kizuna.bootstrap import Context
from kizuna.services import users
from kizuna.services.programme import config
from kizuna.web import create_dashboard_app

PAGES = ("/advocacy/ambassadors", "/advocacy/referrals", "/advocacy/events",
         "/advocacy/events/ev1", "/advocacy/reviews")  # fmt: skip
EXPORTS = ("/advocacy/ambassadors.csv", "/advocacy/ambassadors/candidates.csv",
           "/advocacy/referrals.csv", "/advocacy/events.csv",
           "/advocacy/events/ev1/registrations.csv", "/advocacy/reviews.csv")  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(sqlite_workspace: Context, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    config.forget_cache()
    seed(sqlite_workspace)
    add_users(sqlite_workspace)
    return create_dashboard_app(sqlite_workspace)


@pytest.mark.anyio
@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_every_page_renders_in_both_languages(app: FastAPI, lang: str) -> None:
    async with client(app, **{"Accept-Language": lang}) as http:
        await login(http, "admin")
        for path in PAGES:
            resp = await http.get(path)
            assert resp.status_code == 200, (path, resp.text[:500])
            assert f'lang="{lang}"' in resp.text
        ambassadors = (await http.get("/advocacy/ambassadors")).text
        assert (
            "山田 太郎" in ambassadors and ("活動中" if lang == "ja" else "Active") in ambassadors
        )
        refused = (await http.get("/advocacy/referrals")).text
        assert (
            "紹介者とメールアドレスが一致" if lang == "ja" else "Same e-mail as the referrer"
        ) in refused


@pytest.mark.anyio
async def test_analysts_see_personal_data_masked_on_pages_and_exports(app: FastAPI) -> None:
    async with client(app) as http:
        await login(http, "analyst")
        for path in PAGES:
            text = (await http.get(path)).text
            assert "太郎" not in text and "花子" not in text, path
            assert "hanako@example.jp" not in text, path
        for path in EXPORTS:
            resp = await http.get(path)
            assert resp.status_code == 200, path
            assert "太郎" not in resp.text and "hanako@example.jp" not in resp.text, path
        assert "approve-r1" not in (await http.get("/advocacy/reviews")).text
        assert (
            await http.post("/advocacy/reviews/r1", data={"decision": "approved"})
        ).status_code in (403, 303, 401)
    async with client(app) as http:
        await login(http, "admin")
        text = (await http.get("/advocacy/reviews.csv")).text
        assert "hanako@example.jp" in text and "佐藤 花子" in text


@pytest.mark.anyio
async def test_marketer_moderates_from_the_queue(app: FastAPI) -> None:
    async with client(app) as http:
        token = await login(http, "marketer")
        resp = await http.post(
            "/advocacy/reviews/r2",
            data={"decision": "rejected", "csrf_token": token, "back": "pending"},
        )
        assert resp.status_code == 303 and "error=1" in resp.headers["location"]
        resp = await http.post(
            "/advocacy/reviews/r2",
            data={"decision": "rejected", "reason": "off topic", "csrf_token": token},
        )
        assert resp.status_code == 303
        await http.post("/advocacy/reviews/r1", data={"decision": "approved", "csrf_token": token})
        approved = (await http.get("/advocacy/reviews?status=approved")).text
        assert 'data-review="r1"' in approved and "+50 pt" in approved
        rejected = (await http.get("/advocacy/reviews?status=rejected")).text
        assert "off topic" in rejected
        assert (
            await http.post("/advocacy/reviews/r1", data={"decision": "approved"})
        ).status_code == 403


@pytest.mark.anyio
async def test_the_referral_link_opens_a_public_page(
    app: FastAPI, sqlite_workspace: Context
) -> None:
    from kizuna.services import referrals
    from kizuna.services.uow import UnitOfWork

    got = referrals.code_for(UnitOfWork(sqlite_workspace.engine, sqlite_workspace.settings), "A1")
    path = got["link"].removeprefix(sqlite_workspace.settings.public_url)
    assert path == f"/r/{got['code']}"
    async with client(app) as http:  # nobody logged in
        resp = await http.get(path + "?lang=en")
        assert (
            resp.status_code == 200
            and got["code"] in resp.text
            and "A friend invited you" in resp.text
        )
        lower = await http.get(f"/r/{got['code'].lower()}?lang=ja")
        assert lower.status_code == 200 and "お友だちからのご招待" in lower.text
        bad = await http.get("/r/ZZZZZZZZ?lang=en")
        assert bad.status_code == 404 and "does not work" in bad.text
