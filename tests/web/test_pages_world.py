"""The shared world of the marketer's-pages tests (``test_pages_*.py``).

A 300-customer sample imported and scored, one user per role, one member
who earned points through the programme service, and a journey that ran
through the worker for that member (a task and two send-ledger rows). The
tests of each page build it with :func:`build_world` in a ``world`` fixture.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from tests.web.webclient import add_users, client, login

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import journeys, segments
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.scoring import RunInfo, score
from kizuna.services.uow import UnitOfWork
from kizuna.web import create_dashboard_app

AS_OF = date(2026, 10, 31)
MEMBER = "C0000001"
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@dataclass
class World:
    app: FastAPI
    ctx: Context
    run: RunInfo


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def build_world(ctx: Context, folder: Path) -> World:
    add_users(ctx)
    generate(folder, 300, seed=3)
    import_paths(ctx, ImportFiles(files_in_folder(folder)))
    run, _ = score(ctx, as_of=AS_OF)
    with uow(ctx) as work:
        record_order(
            work, RecordOrder("P-1", MEMBER, (OrderLine(1, 12_000),), ordered_at=NOW), now=NOW
        )
    segments.handle_save(
        segments.SaveSegment(
            {"name": "first", "rule": {"field": "external_id", "op": "eq", "value": MEMBER}}
        ),
        uow(ctx),
    )
    doc = {
        "name": "welcome",
        "holdout_percent": 0,
        "trigger": {"segment_entry": "first"},
        "steps": [
            {"id": "call", "action": "create_task", "title": "Call {{ name }}"},
            {"id": "tag", "action": "set_attribute", "key": "welcomed", "value": True},
        ],
    }
    journeys.handle_save(journeys.SaveJourney(doc), uow(ctx))
    journeys.set_status("welcome", "active", uow(ctx))
    run_worker(ctx, once=True, clock=lambda: NOW, worker_id="w", refresh_segments_every_seconds=0)
    return World(create_dashboard_app(ctx), ctx, run)


@asynccontextmanager
async def session(app: FastAPI, role: str, lang: str = "en") -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        http.cookies.set("kizuna_lang", lang)
        await login(http, role)
        yield http


def by_testid(page: str, name: str) -> str:
    """The text of the element carrying ``data-testid=name`` (tags stripped)."""
    match = re.search(
        rf'data-testid="{re.escape(name)}"[^>]*>(.*?)</(?:p|dd|span|td|div)>', page, re.S
    )
    assert match, f"no element with data-testid={name}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
