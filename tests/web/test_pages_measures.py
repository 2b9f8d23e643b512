"""Measures through HTTP: target, result and interval on the page and in the CSV equal
:func:`measures.report`; the chart carries the intervals as error bars; editors register
a measure, analysts cannot."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.web.test_pages_world import NOW, World, build_world, by_testid, csv_rows, session, uow
from tests.web.webclient import csrf_of

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.services import journeys, measures, segments
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    w = build_world(workspace, tmp_path / "sample")
    ctx = w.ctx
    segments.handle_save(
        segments.SaveSegment(
            {"name": "buyers", "rule": {"aggregate": "orders", "op": "gte", "value": 1}}
        ),
        uow(ctx),
    )
    doc = {"name": "recall", "holdout_percent": 40, "trigger": {"segment_entry": "buyers"},
           "goal": {"purchase_within_days": 30},
           "steps": [{"id": "t", "action": "create_task", "title": "recall"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow(ctx))
    journeys.set_status("recall", "active", uow(ctx))
    run_worker(ctx, once=True, clock=lambda: NOW, worker_id="w", refresh_segments_every_seconds=0)
    with ctx.engine.begin() as conn:
        runs = conn.execute(
            sa.select(at.journey_runs.c.customer_id, at.journey_runs.c.holdout)
            .join(at.journeys, at.journeys.c.id == at.journey_runs.c.journey_id)
            .where(at.journeys.c.name == "recall")
            .order_by(at.journey_runs.c.customer_id)
        ).all()
        for i, (cid, holdout) in enumerate(runs):
            if i % (5 if holdout else 2) == 0:  # treated buy more often than the hold-out
                conn.execute(sa.insert(t.orders).values(
                    external_id=f"after-{cid}", customer_id=cid,
                    ordered_at=NOW + timedelta(days=3), total_amount=4000))  # fmt: skip
    measures.handle_set(
        measures.SetMeasure("recall", "win back", "conversion_uplift", 0.05), uow(ctx)
    )
    return w


async def test_the_page_and_csv_equal_the_report(world: World) -> None:
    rep = measures.report("recall", uow(world.ctx))
    assert rep.treated.customers and rep.holdout.customers
    async with session(world.app, "analyst") as http:
        page = (await http.get("/measures")).text
        assert by_testid(page, "result-recall") == EN.percent(rep.conversion_uplift.estimate)
        row = next(r for r in csv_rows(await http.get("/measures.csv")) if r["journey"] == "recall")
        assert float(row["result"]) == pytest.approx(rep.conversion_uplift.estimate)
        assert float(row["result_low"]) == pytest.approx(rep.conversion_uplift.low)
        assert float(row["result_high"]) == pytest.approx(rep.conversion_uplift.high)
        assert row["achieved"] == str(rep.achieved)
        figure = json.loads(re.search(r'id="conv-figure">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
        trace = figure["data"][0]
        i = trace["x"].index("recall")
        assert trace["y"][i] + trace["error_y"]["array"][i] == pytest.approx(
            rep.conversion_uplift.high
        )
        assert trace["y"][i] - trace["error_y"]["arrayminus"][i] == pytest.approx(
            rep.conversion_uplift.low
        )
        token = csrf_of(page)
        form = {
            "csrf_token": token,
            "journey": "welcome",
            "objective": "x",
            "kpi": "conversion_rate",
            "target": "0.1",
        }
        assert (await http.post("/measures", data=form)).status_code == 403


async def test_editors_register_a_measure(world: World) -> None:
    async with session(world.app, "marketer", "ja") as http:
        page = (await http.get("/measures")).text
        assert "施策効果" in page
        token = csrf_of(page)
        form = {
            "csrf_token": token,
            "journey": "welcome",
            "objective": "歓迎",
            "kpi": "conversion_rate",
            "target": "0.1",
        }
        assert (await http.post("/measures", data=form)).status_code == 303
        bad = await http.post("/measures", data={**form, "kpi": "happiness"})
        assert bad.status_code == 422 and "kpi must be one of" in bad.text
    assert measures.report("welcome", uow(world.ctx)).kpi == "conversion_rate"


async def test_new_orders_change_the_page_at_once(world: World) -> None:
    async with session(world.app, "analyst") as http:
        before = by_testid((await http.get("/measures")).text, "result-recall")
        with world.ctx.engine.begin() as conn:
            treated = (
                conn.execute(
                    sa.select(at.journey_runs.c.customer_id)
                    .join(at.journeys, at.journeys.c.id == at.journey_runs.c.journey_id)
                    .where(at.journeys.c.name == "recall", at.journey_runs.c.holdout == sa.false())
                )
                .scalars()
                .all()
            )
            for cid in treated:
                conn.execute(sa.insert(t.orders).values(
                    external_id=f"more-{cid}", customer_id=cid,
                    ordered_at=NOW + timedelta(days=5), total_amount=1000))  # fmt: skip
        rep = measures.report("recall", uow(world.ctx))
        after = by_testid((await http.get("/measures")).text, "result-recall")
    assert after == EN.percent(rep.conversion_uplift.estimate) and after != before
