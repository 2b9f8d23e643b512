"""The dashboard's stored figures: computed at the end of a run, read as one row, never stale.

A scoring run stores what the analytics pages show (``run_artefacts``); these
tests prove that the stored figures equal the live queries exactly, that a
page reads the stored row (a fresh process computes nothing), and that the
figures following the data (overview, KPIs, cohorts, lifecycle) are
recomputed as soon as the data changes.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.web.webclient import add_users, client, login

from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import analytics_queries as queries
from kizuna.services import dashboard_figures as figures
from kizuna.services import insights
from kizuna.services import run_artefacts as ra
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.scoring import RunInfo, score
from kizuna.services.summary import workspace_summary
from kizuna.services.uow import UnitOfWork
from kizuna.store.web_tables import run_artefacts
from kizuna.web import create_dashboard_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def scored(workspace: Context, tmp_path: Path) -> tuple[Context, RunInfo]:
    insights.forget()
    add_users(workspace)
    generate(tmp_path / "sample", 300, seed=3)
    import_paths(workspace, ImportFiles(files_in_folder(tmp_path / "sample")))
    run, _ = score(workspace, as_of=date(2026, 10, 31), dashboard=True)
    return workspace, run


def _keys(ctx: Context, run_id: int) -> set[str]:
    with ctx.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(run_artefacts.c.key).where(run_artefacts.c.run_id == run_id)
            ).scalars()
        )


def test_a_scoring_run_stores_every_figure_of_the_pages(scored: tuple[Context, RunInfo]) -> None:
    ctx, run = scored
    k = insights.DEFAULT_PERSONAS
    personas = insights.persona_view(ctx).clusters
    expected = {"matrix", "rfm", f"personas:{k}", "drivers", f"journey_map:{k}:all"}
    expected |= {f"journey_map:{k}:{int(c['persona'])}" for c in personas}
    assert expected <= _keys(ctx, run.id)
    data_keys = {key.split("@")[0] for key in _keys(ctx, ra.WORKSPACE)}
    assert {"summary", "kpis_monthly", "cohorts", "lifecycle"} <= data_keys
    assert "dashboard" in run.timings


def test_stored_figures_equal_the_live_queries(scored: tuple[Context, RunInfo]) -> None:
    ctx, run = scored
    pd.testing.assert_frame_equal(
        figures.monthly_kpis(ctx),
        queries.kpi_frame(ctx, monthly=True),
        check_exact=False,
        rtol=1e-12,
    )
    pd.testing.assert_frame_equal(
        figures.cohorts(ctx),
        queries.cohort_frame(ctx),
        check_exact=False,
        rtol=1e-12,
        check_names=False,
    )
    trend, matrix = figures.lifecycle(ctx)
    live_trend, live_matrix = queries.lifecycle_frames(ctx)
    pd.testing.assert_frame_equal(
        trend, live_trend, check_exact=False, rtol=1e-12, check_names=False
    )
    pd.testing.assert_frame_equal(
        matrix, live_matrix, check_exact=False, rtol=1e-12, check_names=False
    )
    # Means over the same rows; PostgreSQL may sum them in another order (last bit).
    stored, live = figures.segment_table(ctx, run), queries.segment_table(ctx)
    assert [(r["segment"], r["customers"]) for r in stored] == [
        (r["segment"], r["customers"]) for r in live
    ]
    for key in ("mean_spend", "mean_clv", "mean_p_alive"):
        assert [r[key] for r in stored] == pytest.approx([r[key] for r in live], rel=1e-12)
    assert figures.summary(ctx) == workspace_summary(ctx.engine, ctx.settings)


async def test_pages_read_the_stored_row_not_their_own_computation(
    scored: tuple[Context, RunInfo],
) -> None:
    """Every process reads the one stored row: change it and the page follows."""
    ctx, run = scored
    insights.forget()  # a fresh process: nothing cached in memory
    with ctx.engine.begin() as conn:
        doc = json.loads(
            conn.execute(
                sa.select(run_artefacts.c.doc).where(
                    run_artefacts.c.run_id == run.id, run_artefacts.c.key == "matrix"
                )
            ).scalar_one()
        )
        doc["true"] = [123_457, doc.get("true", [0, 0])[1]]
        conn.execute(
            sa.update(run_artefacts)
            .where(run_artefacts.c.run_id == run.id, run_artefacts.c.key == "matrix")
            .values(doc=json.dumps(doc))
        )
    app = create_dashboard_app(ctx)
    async with client(app) as http:
        http.cookies.set("kizuna_lang", "en")
        await login(http, "analyst")
        page = (await http.get("/analytics/matrix")).text
    assert "123,457" in page


async def test_the_overview_follows_new_data_at_once(scored: tuple[Context, RunInfo]) -> None:
    ctx, _ = scored
    before = figures.summary(ctx)
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        record_order(
            uow, RecordOrder("NEW-1", "C0000001", (OrderLine(1, 98_765),), ordered_at=now), now=now
        )
    after = figures.summary(ctx)
    assert after == workspace_summary(ctx.engine, ctx.settings)
    assert after.counts["orders"] == before.counts["orders"] + 1
    assert after.revenue == before.revenue + 98_765
    app = create_dashboard_app(ctx)
    async with client(app) as http:
        http.cookies.set("kizuna_lang", "en")
        await login(http, "admin")
        page = (await http.get("/")).text
    assert f"{after.counts['orders']:,}" in page


def test_a_run_made_before_the_table_existed_is_computed_once_on_first_view(
    scored: tuple[Context, RunInfo],
) -> None:
    ctx, run = scored
    with ctx.engine.begin() as conn:
        conn.execute(sa.delete(run_artefacts))
    insights.forget()
    first = insights.journey_map(ctx)
    assert f"journey_map:{insights.DEFAULT_PERSONAS}:all" in _keys(ctx, run.id)
    insights.forget()
    again = insights.journey_map(ctx)
    assert [c.customers for c in again.columns] == [c.customers for c in first.columns]
    assert again.columns == first.columns


def test_an_erasure_rebuilds_every_stored_figure_that_quotes_comments(
    scored: tuple[Context, RunInfo],
) -> None:
    """Erasure anonymises in place; stored words of the erased comments must not survive it."""
    from kizuna.services.privacy import erase_customer

    ctx, run = scored
    key = f"journey_map:{insights.DEFAULT_PERSONAS}:all"
    with ctx.engine.connect() as conn:
        before = ra.read(conn, run.id, key)
        voice_before = ra.fingerprint(conn, figures.FEEDBACK_TABLES)
    assert before is not None
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        erase_customer(uow, "C0000002", actor="test", reason="request")
        uow.commit()
    insights.journey_map(ctx)
    with ctx.engine.connect() as conn:
        after = ra.read(conn, run.id, key)
        assert after is not None and after[0] == ra.erasure_mark(conn) != before[0]
        assert ra.fingerprint(conn, figures.FEEDBACK_TABLES) != voice_before


def test_feedback_trends_are_stored_per_day_and_equal_the_live_computation(
    scored: tuple[Context, RunInfo],
) -> None:
    from kizuna.services import survey_feedback as sf

    ctx, _ = scored
    day = date(2026, 11, 26)
    stored = figures.feedback_trends(ctx, sf.SOURCES, day)
    docs = sf.load_docs(ctx.engine, ctx.settings, sf.SOURCES)
    assert stored.trends and stored.trends == sf.trends(docs)
    live = sf.churn_by_theme(ctx.engine, ctx.settings, docs, as_of=stored.as_of)
    assert stored.churn == live and any(r.customers_with for r in live)
    assert stored.as_of == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # midnight in Tokyo
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(run_artefacts.c.key, run_artefacts.c.fingerprint).where(
                run_artefacts.c.run_id == ra.WORKSPACE,
                run_artefacts.c.key.like("voice_trends:%"),
            )
        ).all()
    assert [fp.endswith(";2026-11-26") for _, fp in rows] == [True]
    # The next day the figures are made again (one row per source set, not per day).
    figures.feedback_trends(ctx, sf.SOURCES, date(2026, 11, 27))
    with ctx.engine.connect() as conn:
        fps = (
            conn.execute(
                sa.select(run_artefacts.c.fingerprint).where(
                    run_artefacts.c.key.like("voice_trends:%")
                )
            )
            .scalars()
            .all()
        )
    assert len(fps) == 1 and fps[0].endswith(";2026-11-27")
