"""Bounded staleness of the figures that follow the data (stale-while-revalidate).

After a write a dashboard page answers at once from the stored figure, says
how old it is, and one process recomputes it in the background (a lease row
in ``figure_refresh``), at most once per ``dashboard_refresh_seconds``; a
failed recompute leaves the old figure served; editors may ask for a
refresh now. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.web.webclient import add_users, client, csrf_of, login

from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import dashboard_figures as figures
from kizuna.services import figure_refresh as fr
from kizuna.services import run_artefacts as ra
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.summary import COUNTED_TABLES, workspace_summary
from kizuna.services.uow import UnitOfWork
from kizuna.store.web_tables import figure_refresh, run_artefacts
from kizuna.web import create_dashboard_app
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio


@pytest.fixture
def shop(workspace: Context, tmp_path: Path) -> Iterator[Context]:
    """A 300-customer shop with one user per role; background recomputes waited for."""
    add_users(workspace)
    generate(tmp_path / "sample", 300, seed=5)
    import_paths(workspace, ImportFiles(files_in_folder(tmp_path / "sample")))
    yield workspace
    assert fr.wait_background(120), "a background recompute never finished"


class Gate:
    """Holds the overview's computation until released, and counts the calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, engine: sa.Engine, settings: Any) -> Any:
        with self._lock:
            self.calls += 1
        self.started.set()
        assert self.release.wait(60), "the test never released the computation"
        if self.fail:
            raise RuntimeError("the analytics database went away")
        return workspace_summary(engine, settings)


def _summary_key(ctx: Context) -> str:
    with ctx.engine.connect() as conn:
        keys = conn.execute(
            sa.select(run_artefacts.c.key).where(
                run_artefacts.c.run_id == ra.WORKSPACE, run_artefacts.c.key.like("summary@%")
            )
        ).scalars()
        return str(next(iter(keys)))


def _stored(ctx: Context, key: str) -> ra.Stored:
    with ctx.engine.connect() as conn:
        found = ra.read_stored(conn, ra.WORKSPACE, key)
    assert found is not None
    return found


def _fingerprint(ctx: Context) -> str:
    with ctx.engine.connect() as conn:
        return ra.fingerprint(conn, COUNTED_TABLES)


def _earn(ctx: Context, order_id: str, amount: int = 98_765) -> None:
    now = datetime.now(UTC)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        record_order(
            uow, RecordOrder(order_id, "C0000001", (OrderLine(1, amount),), ordered_at=now), now=now
        )


def _as_of_text(ctx: Context, at: datetime) -> str:
    s = ctx.settings
    return "Figures as of " + Formatter("en", s.currency, s.currency_exponent, s.timezone).as_of(at)


async def _english(http: httpx.AsyncClient, user: str) -> str:
    http.cookies.set("kizuna_lang", "en")
    return await login(http, user)


async def test_after_a_write_the_page_serves_the_stored_figure_while_one_is_recomputed(
    shop: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = shop
    before = figures.summary(ctx)  # stored, as a scoring run or a first view would
    key = _summary_key(ctx)
    old = _stored(ctx, key)
    _earn(ctx, "NEW-1")
    gate = Gate()
    monkeypatch.setattr(figures, "workspace_summary", gate)
    app = create_dashboard_app(ctx)
    async with client(app) as http:
        await _english(http, "analyst")
        page = await asyncio.wait_for(http.get("/"), 30)
        # Served at once from the stored figure, with its time, while the
        # new one is being computed (held by the gate) in the background.
        assert page.status_code == 200
        assert f"{before.counts['orders']:,}" in page.text
        assert _as_of_text(ctx, old.created_at) in page.text
        assert "updating…" in page.text
        assert gate.started.wait(30)
        assert _stored(ctx, key).fingerprint == old.fingerprint  # not recomputed inline
        lease = fr.lease_of(ctx.engine, key)
        assert lease is not None and lease["lease_until"] > datetime.now(UTC)
        gate.release.set()
        assert fr.wait_background(60)
        new = _stored(ctx, key)
        assert new.fingerprint == _fingerprint(ctx) != old.fingerprint
        assert new.created_at > old.created_at
        assert fr.lease_of(ctx.engine, key)["lease_until"] is None  # type: ignore[index]
        page = await http.get("/")
    after = workspace_summary(ctx.engine, ctx.settings)
    assert after.counts["orders"] == before.counts["orders"] + 1
    assert f"{after.counts['orders']:,}" in page.text
    assert "updating…" not in page.text
    assert "Figures as of" in page.text
    assert gate.calls == 1


async def test_concurrent_views_start_one_recompute(
    shop: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = shop
    figures.summary(ctx)
    _earn(ctx, "NEW-2")
    gate = Gate()
    monkeypatch.setattr(figures, "workspace_summary", gate)
    app = create_dashboard_app(ctx)
    async with client(app) as http, client(app) as other:
        await _english(http, "analyst")
        await _english(other, "marketer")
        pages = await asyncio.wait_for(
            asyncio.gather(*(c.get("/") for c in (http, other, http, other))), 30
        )
        assert all(p.status_code == 200 and "updating…" in p.text for p in pages)
        gate.release.set()
        assert fr.wait_background(60)
    assert gate.calls == 1


_OTHER_PROCESS = """
import sys
from kizuna.bootstrap import Context
from kizuna.config import load_settings
from kizuna.services import figure_refresh as fr
from pathlib import Path
ctx = Context(load_settings(Path(sys.argv[1])))
print(fr.acquire(ctx.engine, sys.argv[2], "other-process", 300)[0])
"""


def _other_process_takes_lease(ctx: Context, key: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(ctx.settings.workspace), key],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env_of(ctx),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "True"


def _env_of(ctx: Context) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env["KIZUNA_DATABASE_URL"] = ctx.settings.database_url
    return env


async def test_another_process_cannot_take_a_held_lease_until_it_lapses(
    shop: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = shop
    figures.summary(ctx)
    key = _summary_key(ctx)
    _earn(ctx, "NEW-3")
    gate = Gate()
    monkeypatch.setattr(figures, "workspace_summary", gate)
    app = create_dashboard_app(ctx)
    async with client(app) as http:
        await _english(http, "analyst")
        assert "updating…" in (await http.get("/")).text
        assert gate.started.wait(30)
        assert not _other_process_takes_lease(ctx, key)  # this process is recomputing
        gate.release.set()
        assert fr.wait_background(60)
    # A recomputer that crashed leaves its lease; once it lapses (and the
    # bound on recomputes has passed) another process takes over.
    past = datetime.now(UTC) - timedelta(hours=1)
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.update(figure_refresh)
            .where(figure_refresh.c.key == key)
            .values(holder="crashed", lease_until=past, started_at=past)
        )
    assert _other_process_takes_lease(ctx, key)
    assert fr.lease_of(ctx.engine, key)["holder"] == "other-process"  # type: ignore[index]


async def test_recomputes_are_bounded_and_an_editor_may_ask_for_one_now(
    shop: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = shop
    figures.summary(ctx)
    key = _summary_key(ctx)
    _earn(ctx, "NEW-4")
    app = create_dashboard_app(ctx)
    async with client(app) as http, client(app) as analyst:
        csrf = await _english(http, "marketer")
        await _english(analyst, "analyst")
        assert "updating…" in (await http.get("/")).text
        assert fr.wait_background(60)
        first = _stored(ctx, key)
        # Another write within dashboard_refresh_seconds: served as stored, no recompute.
        _earn(ctx, "NEW-5")
        gate = Gate()
        monkeypatch.setattr(figures, "workspace_summary", gate)
        page = (await http.get("/")).text
        assert "updating…" not in page
        assert _as_of_text(ctx, first.created_at) in page
        assert "Refresh now" in page  # an editor may lift the bound
        assert "Refresh now" not in (await analyst.get("/")).text
        assert gate.calls == 0 and _stored(ctx, key).fingerprint == first.fingerprint
        # The refresh form needs the session's CSRF token and an editor.
        refused = await http.post("/figures/refresh", data={"next": "/"})
        assert refused.status_code == 403
        analyst_csrf = csrf_of((await analyst.get("/data")).text)
        refused = await analyst.post(
            "/figures/refresh", data={"csrf_token": analyst_csrf, "next": "/"}
        )
        assert refused.status_code == 403
        assert fr.lease_of(ctx.engine, key)["requested_at"] is None  # type: ignore[index]
        queued = await http.post(
            "/figures/refresh", data={"csrf_token": csrf, "next": "https://evil.example/"}
        )
        assert queued.status_code == 303 and queued.headers["location"] == "/"
        assert gate.calls == 0  # it only queued the recompute
        gate.release.set()
        assert "updating…" in (await http.get("/")).text
        assert fr.wait_background(60)
        assert gate.calls == 1
        assert _stored(ctx, key).fingerprint == _fingerprint(ctx)


async def test_a_failed_recompute_leaves_the_old_figure_served_and_is_logged(
    shop: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = shop
    before = figures.summary(ctx)
    key = _summary_key(ctx)
    old = _stored(ctx, key)
    _earn(ctx, "NEW-6")
    gate = Gate(fail=True)
    gate.release.set()
    monkeypatch.setattr(figures, "workspace_summary", gate)
    app = create_dashboard_app(ctx)
    with caplog.at_level(logging.ERROR, logger="kizuna.services.run_artefacts"):
        async with client(app) as http:
            await _english(http, "admin")
            assert (await http.get("/")).status_code == 200
            assert fr.wait_background(60)
            page = await http.get("/")
    assert page.status_code == 200
    assert f"{before.counts['orders']:,}" in page.text
    assert _as_of_text(ctx, old.created_at) in page.text
    assert "updating…" not in page.text
    assert _stored(ctx, key) == old
    assert any(
        "recomputing dashboard figure summary@" in r.getMessage() and r.exc_info
        for r in caplog.records
    )
    assert fr.lease_of(ctx.engine, key)["lease_until"] is None  # type: ignore[index]
    assert gate.calls == 1


async def test_with_no_stored_figure_or_zero_seconds_the_page_computes_it(
    shop: Context,
) -> None:
    ctx = shop
    app = create_dashboard_app(ctx)
    async with client(app) as http:
        await _english(http, "analyst")
        first = await http.get("/")  # nothing stored yet: computed inline
        key = _summary_key(ctx)
        assert _stored(ctx, key).fingerprint == _fingerprint(ctx)
        assert "Figures as of" in first.text and "updating…" not in first.text
        ctx.settings = dataclasses.replace(ctx.settings, dashboard_refresh_seconds=0)
        _earn(ctx, "NEW-7")
        page = await http.get("/")  # 0: always current, recomputed on the view
    orders = workspace_summary(ctx.engine, ctx.settings).counts["orders"]
    assert f"{orders:,}" in page.text and "updating…" not in page.text
    assert _stored(ctx, key).fingerprint == _fingerprint(ctx)
