"""The dashboard through HTTP (ASGI), on SQLite and PostgreSQL: login, roles,
CSRF, pages, uploads and CSV exports with personal data masked by role."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from tests.helpers import CUSTOMERS_CSV, ORDERS_CSV, count, run_import, write
from tests.web.webclient import PASSWORD, client, csrf_of, login

from kizuna.bootstrap import Context
from kizuna.services.summary import COUNTED_TABLES
from kizuna.services.users import audit_log
from kizuna.store import tables
from kizuna.web.auth import SECRET_FILE
from kizuna.web.routes import customers as customer_routes
from kizuna.web.throttle import MAX_FAILURES

pytestmark = pytest.mark.anyio

#: Routes anyone may open: the login form, the language switch, the assets,
#: and the survey page a signed link opens (docs/voice.md).
PUBLIC = {
    "/login",
    "/lang/{language}",
    "/static/vendor/plotly.min.js",
    "/survey/{token}",  # a signed survey link is its own authorisation
    "/r/{code}",  # a referral link, shared with people who have no login
}


def _routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI nests them lazily)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or getattr(route, "router", None)
        if inner is not None and hasattr(inner, "routes"):
            yield from _routes(inner.routes)


def _get_paths(app: FastAPI) -> list[str]:
    return sorted(
        r.path.replace("{customer_id}", "C1")
        for r in _routes(app.routes)
        if "GET" in r.methods and r.path not in PUBLIC
    )


async def test_every_page_sends_an_anonymous_visitor_to_the_login(dashboard: FastAPI) -> None:
    paths = _get_paths(dashboard)
    assert {"/", "/customers", "/customers/C1", "/data", "/customers.csv"} <= set(paths)
    async with client(dashboard) as http:
        for path in paths:
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path


async def test_wrong_password_is_refused_and_a_right_one_opens_the_overview(
    dashboard: FastAPI,
) -> None:
    async with client(dashboard) as http:
        page = await http.get("/login")
        refused = await http.post(
            "/login",
            data={
                "username": "marketer",
                "password": "nope-nope-nope",
                "csrf_token": csrf_of(page.text),
            },
        )
        assert refused.status_code == 401
        assert (await http.get("/")).status_code == 303
        await login(http, "marketer")
        overview = await http.get("/")
        assert overview.status_code == 200
        assert "Content-Security-Policy" in overview.headers
        assert "kizuna_session" in http.cookies


async def test_repeated_wrong_passwords_lock_the_user_name(sqlite_dashboard: FastAPI) -> None:
    async with client(sqlite_dashboard, **{"accept-language": "en"}) as http:
        token = csrf_of((await http.get("/login")).text)
        for _ in range(MAX_FAILURES):
            wrong = {"username": "analyst", "password": "guess-guess", "csrf_token": token}
            assert (await http.post("/login", data=wrong)).status_code == 401
        right = {"username": "analyst", "password": PASSWORD, "csrf_token": token}
        locked = await http.post("/login", data=right)
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        other = {"username": "marketer", "password": PASSWORD, "csrf_token": token}
        assert (await http.post("/login", data=other)).status_code == 303


async def test_login_sends_the_user_back_where_they_were_but_never_off_site(
    sqlite_dashboard: FastAPI,
) -> None:
    async with client(sqlite_dashboard) as http:
        for target, expected in (
            ("/customers?q=C1", "/customers?q=C1"),
            ("//evil.example/", "/"),
            ("https://evil.example/", "/"),
        ):
            page = await http.get("/login", params={"next": target})
            response = await http.post(
                "/login",
                data={
                    "username": "admin",
                    "password": PASSWORD,
                    "next": target,
                    "csrf_token": csrf_of(page.text),
                },
            )
            assert response.headers["location"] == expected


async def test_a_post_without_the_csrf_token_is_refused(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    path = write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    async with client(dashboard, **{"accept-language": "en"}) as http:
        token = await login(http, "marketer")
        for sent in ({}, {"csrf_token": "forged"}):
            response = await http.post(
                "/data/upload",
                data={"kind": "customers", **sent},
                files={"file": ("customers.csv", path.read_bytes(), "text/csv")},
            )
            assert response.status_code == 403
            assert "form has expired" in response.text
        assert count(workspace, "customers") == 0
        assert (await http.post("/logout")).status_code == 403
        assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
        assert (await http.get("/")).status_code == 303


async def test_a_login_without_the_csrf_token_is_refused(dashboard: FastAPI) -> None:
    async with client(dashboard) as http:
        response = await http.post("/login", data={"username": "admin", "password": PASSWORD})
        assert response.status_code == 403


async def test_an_analyst_cannot_upload_but_a_marketer_can(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    data = write(tmp_path / "customers.csv", CUSTOMERS_CSV).read_bytes()
    async with client(dashboard, **{"accept-language": "ja"}) as http:
        token = await login(http, "analyst")
        page = await http.get("/data")
        assert 'action="/data/upload"' not in page.text
        response = await http.post(
            "/data/upload",
            data={"kind": "customers", "csrf_token": token},
            files={"file": ("customers.csv", data, "text/csv")},
        )
        assert response.status_code == 403
        assert "権限がありません" in response.text
    assert count(workspace, "customers") == 0
    async with client(dashboard, **{"accept-language": "en"}) as http:
        token = await login(http, "marketer")
        response = await http.post(
            "/data/upload",
            data={"kind": "customers", "csrf_token": token},
            files={"file": ("customers.csv", data, "text/csv")},
        )
        assert response.status_code == 200
        assert "Imported: 3 new" in response.text
    assert count(workspace, "customers") == 3


BAD_CUSTOMERS = """customer_id,name,email,birthday,signup_at
C1,山田 太郎,taro@example.jp,1990-04-01,2024-01-05T10:00:00+09:00
C2,佐藤 花子,hanako@example.jp,1985-02-30,2024-02-01 09:00
C3,Jane Doe,jane@example.com,,not-a-time
"""


async def test_a_bad_file_shows_every_problem_by_line_and_column_and_writes_nothing(
    dashboard: FastAPI, workspace: Context
) -> None:
    before = snapshot(workspace)
    async with client(dashboard, **{"accept-language": "en"}) as http:
        token = await login(http, "marketer")
        response = await http.post(
            "/data/upload",
            data={"kind": "customers", "csrf_token": token},
            files={"file": ("会員.csv", BAD_CUSTOMERS.encode(), "text/csv")},
        )
    assert response.status_code == 422
    assert "Nothing was imported: 2 problems found" in response.text
    html = response.text
    assert "会員.csv" in html
    for line, column in ((3, "birthday"), (4, "signup_at")):
        assert f'<td class="num">{line}</td><td>{column}</td>' in html
    assert snapshot(workspace) == before
    runs = await _runs_csv(dashboard)
    assert runs[-1]["status"] == "rejected"


async def test_skip_bad_rows_imports_the_good_ones(dashboard: FastAPI, workspace: Context) -> None:
    async with client(dashboard, **{"accept-language": "en"}) as http:
        token = await login(http, "admin")
        response = await http.post(
            "/data/upload",
            data={"kind": "customers", "csrf_token": token, "skip_bad": "true"},
            files={"file": ("customers.csv", BAD_CUSTOMERS.encode(), "text/csv")},
        )
    assert response.status_code == 200
    assert "2 bad rows skipped" in response.text
    assert count(workspace, "customers") == 1


def snapshot(ctx: Context) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every data table, to prove an import wrote nothing."""
    with ctx.engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(sa.select(tables.metadata.tables[name]))]
            for name in COUNTED_TABLES
        }


async def _runs_csv(app: FastAPI) -> list[dict[str, str]]:
    async with client(app) as http:
        await login(http, "analyst")
        response = await http.get("/data/runs.csv")
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


async def test_customer_search_pages_with_a_cursor(
    dashboard: FastAPI, workspace: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_import(workspace, "customers", write(tmp_path / "c.csv", CUSTOMERS_CSV))
    monkeypatch.setattr(customer_routes, "PAGE_SIZE", 2)
    async with client(dashboard) as http:
        await login(http, "marketer")
        first = await http.get("/customers")
        assert "C1" in first.text and "C2" in first.text and ">C3<" not in first.text
        assert "after=C2" in first.text
        second = await http.get("/customers", params={"after": "C2"})
        assert ">C3<" in second.text and ">C1<" not in second.text
        assert "after=" not in second.text
        found = await http.get("/customers", params={"q": "HANAKO@"})
        assert ">C2<" in found.text and ">C1<" not in found.text


async def test_the_customer_360_shows_profile_stats_and_a_filtered_paged_timeline(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    run_import(workspace, "customers", write(tmp_path / "c.csv", CUSTOMERS_CSV))
    run_import(workspace, "orders", write(tmp_path / "o.csv", ORDERS_CSV))
    async with client(dashboard, **{"accept-language": "ja"}) as http:
        await login(http, "marketer")
        page = await http.get("/customers/C1")
        assert page.status_code == 200
        assert "山田 太郎" in page.text and "taro@example.jp" in page.text
        assert "注文 O1 · ￥1,980" in page.text and 'badge-order">注文<' in page.text
        assert "￥1,980" in page.text
        assert "2025/01/31 23:30:00" in page.text  # the order's instant in Asia/Tokyo
        only = await http.get("/customers/C1", params={"kind": "consent"})
        assert "O1" not in only.text
        older = await http.get("/customers/C1", params={"before": "2025-01-31T14:30:00+00:00"})
        assert "O1" not in older.text
        missing = await http.get("/customers/NOPE")
        assert missing.status_code == 404 and "この ID の顧客はいません" in missing.text
        nowhere = await http.get("/no/such/page")
        assert nowhere.status_code == 404 and "このページはありません" in nowhere.text


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


async def test_csv_export_masks_personal_data_for_analysts_only_and_is_audited(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    run_import(workspace, "customers", write(tmp_path / "c.csv", CUSTOMERS_CSV))
    run_import(workspace, "orders", write(tmp_path / "o.csv", ORDERS_CSV))
    async with client(dashboard) as http:
        await login(http, "marketer")
        full = _rows((await http.get("/customers.csv")).text)
    async with client(dashboard) as http:
        await login(http, "analyst")
        response = await http.get("/customers.csv", params={"q": "C1"})
        masked = _rows(response.text)
        probe = _rows((await http.get("/customers.csv", params={"q": "taro@"})).text)
        page = await http.get("/customers/C1")
    assert response.headers["content-type"].startswith("text/csv")
    assert full[0]["name"] == "山田 太郎" and full[0]["email"] == "taro@example.jp"
    assert full[0]["revenue_JPY"] == "1980"
    assert [r["customer_id"] for r in masked] == ["C1"]
    assert probe == [], "an analyst must not find customers by their e-mail"
    assert masked[0]["name"] == "山田 *" and masked[0]["email"] == "t***@example.jp"
    assert "taro@example.jp" not in response.text and "太郎" not in response.text
    assert "taro@example.jp" not in page.text and "1990" not in page.text
    exports = [e for e in audit_log(workspace.engine) if e["action"] == "export"]
    assert [(e["username"], e["detail"]["masked"], e["detail"]["rows"]) for e in exports] == [
        ("analyst", True, 0),
        ("analyst", True, 1),
        ("marketer", False, 3),
    ]
    assert "taro" not in repr(exports) and "C1" not in repr(exports)


async def test_every_table_exports_to_csv(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    run_import(workspace, "customers", write(tmp_path / "c.csv", CUSTOMERS_CSV))
    run_import(workspace, "orders", write(tmp_path / "o.csv", ORDERS_CSV))
    async with client(dashboard) as http:
        await login(http, "analyst")
        revenue = _rows((await http.get("/overview/revenue.csv")).text)
        timeline = _rows((await http.get("/customers/C1/timeline.csv")).text)
        runs = _rows((await http.get("/data/runs.csv")).text)
    assert [(r["month"], r["net_JPY"]) for r in revenue] == [
        ("2025-01", "1980"),
        ("2025-02", "5000"),
    ]
    assert [t["kind"] for t in timeline] == ["order"]
    assert timeline[0]["local_time"].startswith("2025-01-31T23:30:00+09:00")
    assert {r["kind"] for r in runs} == {"customers", "orders"}


async def test_accept_language_picks_japanese_and_the_switch_picks_english(
    sqlite_dashboard: FastAPI,
) -> None:
    async with client(sqlite_dashboard, **{"accept-language": "ja-JP,ja;q=0.9,en;q=0.8"}) as http:
        page = await http.get("/login")
        assert '<html lang="ja">' in page.text and "ユーザー名" in page.text
        switched = await http.get("/lang/en", params={"next": "/login"})
        assert switched.status_code == 303 and switched.headers["location"] == "/login"
        page = await http.get("/login")
        assert '<html lang="en">' in page.text and "User name" in page.text
    async with client(sqlite_dashboard, **{"accept-language": "en-US,en;q=0.9"}) as http:
        assert '<html lang="en">' in (await http.get("/login")).text


async def test_money_on_pages_follows_the_locale(
    dashboard: FastAPI, workspace: Context, tmp_path: Path
) -> None:
    run_import(workspace, "customers", write(tmp_path / "c.csv", CUSTOMERS_CSV))
    run_import(workspace, "orders", write(tmp_path / "o.csv", ORDERS_CSV))
    for language, revenue, month in (("ja", "￥6,980", "2025年1月"), ("en", "¥6,980", "Jan 2025")):
        async with client(dashboard, **{"accept-language": language}) as http:
            await login(http, "analyst")
            page = await http.get("/")
        assert f'data-testid="revenue">{revenue}<' in page.text
        assert month in page.text
        assert 'src="/static/vendor/plotly.min.js"' in page.text


async def test_plotly_is_served_from_the_installed_package(sqlite_dashboard: FastAPI) -> None:
    async with client(sqlite_dashboard) as http:
        response = await http.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) > 1_000_000


def test_the_session_key_is_generated_once_into_a_private_file(
    sqlite_workspace: Context,
) -> None:
    from kizuna.web.auth import secret_key

    first = secret_key(sqlite_workspace)
    path = Path(sqlite_workspace.settings.workspace) / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_key(sqlite_workspace) == first and len(first) >= 48


async def test_only_admins_see_users_and_the_audit_log(dashboard: FastAPI) -> None:
    for role in ("marketer", "analyst"):
        async with client(dashboard) as http:
            await login(http, role)
            assert (await http.get("/admin")).status_code == 403
            assert 'href="/admin"' not in (await http.get("/")).text
    async with client(dashboard, **{"accept-language": "en"}) as http:
        await login(http, "admin")
        await http.get("/customers.csv")
        page = await http.get("/admin")
    assert page.status_code == 200
    for name in ("admin", "marketer", "analyst"):
        assert f'<td class="strong">{name}</td>' in page.text
    assert "CSV export" in page.text and "table=customers" in page.text
