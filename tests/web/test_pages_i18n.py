"""Every message the marketer's pages name exists in Japanese and English."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from fastapi import FastAPI
from tests.web.webclient import client, login

from kizuna.analytics.text.themes import DEFAULT_THEMES
from kizuna.bootstrap import Context
from kizuna.ingest.problems import MESSAGES
from kizuna.services.measures import KPIS
from kizuna.web import create_dashboard_app  # noqa: F401  (imports every page module)
from kizuna.web.i18n import catalogue
from kizuna.web.nav import NAV
from kizuna.web.panels import PANELS
from kizuna.web.render import TEMPLATES
from kizuna.web.routes import customer_panels  # noqa: F401

ROUTES = Path(__file__).parents[2] / "src" / "kizuna" / "web"


def test_the_pages_name_only_keys_both_catalogues_have() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    literal = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']""")
    used = {
        m
        for path in (TEMPLATES / "pages").glob("*.html")
        for m in literal.findall(path.read_text())
        if not m.endswith(".") and not m.endswith("_")
    }
    in_code = re.compile(r'"(pages\.[a-z_]+)"')
    used |= {
        m
        for path in [*ROUTES.glob("routes/*_pages.py"), ROUTES / "routes" / "journey_map.py"]
        for m in in_code.findall(path.read_text())
    }
    dynamic = (
        {p.title_key for p in PANELS}
        | {n.label_key for n in NAV if n.label_key.startswith("pages.")}
        | {f"pages.lot_{s}" for s in ("pending", "available")}
        | {f"pages.basis_{b}" for b in ("points", "spend", "orders")}
        | {f"pages.jstatus_{s}" for s in ("draft", "active", "paused")}
        | {f"pages.kind_{k}" for k in ("wait", "action", "if", "split", "exit")}
        | {f"pages.kpi_{k}" for k in KPIS}
        | {f"pages.saved_{k}" for k in ("programme", "reward")}
        | {f"pages.journey_{k}" for k in ("saved", "active", "paused")}
        | {f"pages.user_{k}" for k in ("created", "changed", "password")}
        | {f"pages.theme_{k}" for k in DEFAULT_THEMES}
    )
    wanted = used | dynamic
    assert len(wanted) > 100
    assert sorted(wanted - set(en)) == []
    assert sorted(wanted - set(ja)) == []


def test_every_importer_reason_key_exists_with_the_patterns_fields() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    for pattern, key in MESSAGES:
        assert key in ja and key in en, key
        for language in (ja, en):
            named = {n for _, n, _, _ in string.Formatter().parse(language[key]) if n}
            assert named <= set(pattern.groupindex), (key, named)


@pytest.mark.anyio
async def test_the_data_page_shows_import_problems_in_japanese(
    dashboard: FastAPI, workspace: Context
) -> None:
    bad = (
        b"order_id,customer_id,ordered_at,total_amount\n"
        b"X1,C1,2025-01-01T10:00:00+09:00,12x\n"
        b"X2,C1,yesterday,500\n"
    )
    async with client(dashboard) as http:
        http.cookies.set("kizuna_lang", "ja")
        token = await login(http, "marketer")
        page = await http.post(
            "/data/upload",
            data={"kind": "orders", "csrf_token": token},
            files={"file": ("orders.csv", bad, "text/csv")},
        )
    assert page.status_code == 422
    assert "total_amount は 1980 や 1,980 のような金額で入力してください" in page.text
    assert "ordered_at は 2025-03-04T18:22:10+09:00 のような日時で入力してください" in page.text
    assert "must be an amount" not in page.text
