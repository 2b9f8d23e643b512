"""The worker runs the programme's scheduled jobs itself: no cron needed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.api.apiclient import add_members

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.programme import parse_programme
from kizuna.services.programme import config
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

TOKYO = ZoneInfo("Asia/Tokyo")
EARNED = datetime(2026, 5, 10, 3, tzinfo=UTC)
RELEASE = datetime(2026, 5, 13, tzinfo=TOKYO).astimezone(UTC)  # local day + 3


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


@pytest.fixture
def ws(workspace: Context) -> Context:
    config.forget_cache()
    add_members(workspace, 2)
    with workspace.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id == "M00001")
            .values(birthday=date(1990, 5, 13))
        )
    doc = {"earning": {"pending_days": 3}, "actions": {"birthday": 300}}
    with uow(workspace) as u:
        config.apply_programme(u, parse_programme(doc), "test")
        u.commit()
    with uow(workspace) as u:
        record_order(
            u, RecordOrder("O1", "M00000", (OrderLine(1, 5000),), ordered_at=EARNED), EARNED
        )
    return workspace


def account(ctx: Context, member: str) -> tuple[int, int]:
    a, c = pt.point_accounts.c, t.customers.c
    with ctx.engine.connect() as conn:
        row = conn.execute(
            sa.select(a.pending, a.available)
            .join(t.customers, c.id == a.customer_id)
            .where(c.external_id == member)
        ).one()
    return int(row.pending), int(row.available)


def test_one_worker_pass_releases_a_due_pending_lot_and_awards_birthdays(ws: Context) -> None:
    assert account(ws, "M00000") == (50, 0)
    run_worker(ws, once=True, clock=lambda: RELEASE - timedelta(seconds=1), worker_id="w")
    assert account(ws, "M00000") == (50, 0)  # not due yet
    run_worker(ws, once=True, clock=lambda: RELEASE, worker_id="w")
    assert account(ws, "M00000") == (0, 50)
    assert account(ws, "M00001") == (300, 0)  # birthday points (pending 3 days), Tokyo's day
    run_worker(ws, once=True, clock=lambda: RELEASE + timedelta(hours=1), worker_id="w")
    assert account(ws, "M00001") == (300, 0)  # idempotent: once a year
    with ws.engine.connect() as conn:
        lots = list(conn.execute(sa.select(pt.point_lots.c.state)).scalars())
    assert sorted(lots) == ["available", "pending"]
    with uow(ws) as u:
        assert check_all(u) == []


def test_the_programme_jobs_can_be_switched_off(ws: Context) -> None:
    run_worker(ws, once=True, clock=lambda: RELEASE, worker_id="w",
               programme_jobs_every_seconds=None)  # fmt: skip
    assert account(ws, "M00000") == (50, 0)


def test_a_workspace_that_never_used_the_programme_gets_no_points(workspace: Context) -> None:
    add_members(workspace, 1)
    run_worker(workspace, once=True, clock=lambda: RELEASE, worker_id="w")
    with workspace.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(pt.programme_versions)).scalar()
            == 0
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.point_accounts)).scalar() == 0


def test_a_broken_programme_file_does_not_stop_the_journeys(
    workspace: Context, caplog: pytest.LogCaptureFixture
) -> None:
    config.forget_cache()
    (workspace.settings.workspace / "programme.toml").write_text("[earning\n", encoding="utf-8")
    run_worker(workspace, once=True, clock=lambda: RELEASE, worker_id="w")
    assert "programme jobs skipped" in caplog.text and "not valid TOML" in caplog.text
