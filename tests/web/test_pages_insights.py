"""Personas, key drivers and the customer journey map through HTTP: the page and CSV
numbers equal the insights service, which equals the analytics functions on the latest
run's features, and is cached per run."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.web.test_pages_world import World, build_world, by_testid, csv_rows, session

from kizuna.analytics.personas import personas
from kizuna.bootstrap import Context
from kizuna.services import insights
from kizuna.services.analytics_queries import drivers_frame, scores_frame
from kizuna.services.scoring import score
from kizuna.store.scoring_tables import customer_scores
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    insights.forget()
    return build_world(workspace, tmp_path / "sample")


async def test_personas_equal_the_clustering_of_the_latest_run(world: World) -> None:
    expected = personas(scores_frame(world.ctx), k=insights.DEFAULT_PERSONAS).clusters
    async with session(world.app, "analyst") as http:
        page = (await http.get("/insights/personas")).text
        rows = csv_rows(await http.get("/insights/personas.csv"))
    assert [(int(r["persona"]), int(r["customers"])) for r in rows] == list(
        zip(expected["persona"], expected["customers"], strict=True)
    )
    for p in expected["persona"]:
        assert f'data-persona="{p}"' in page
    first = insights.persona_view(world.ctx)
    assert insights.persona_view(world.ctx) is first  # cached for the run
    score(world.ctx, as_of=date(2026, 10, 30))
    assert insights.persona_view(world.ctx) is not first  # a new run, a new answer


async def test_key_drivers_equal_the_analytics(world: World) -> None:
    expected = drivers_frame(world.ctx)
    async with session(world.app, "marketer", "ja") as http:
        page = (await http.get("/insights/drivers")).text
        rows = csv_rows(await http.get("/insights/drivers.csv"))
    assert "NPSのキードライバー" in page
    assert [r["driver"] for r in rows] == list(expected["driver"])
    for r, (_, e) in zip(rows, expected.iterrows(), strict=True):
        assert float(r["difference"]) == pytest.approx(e["difference"])
        assert float(r["adjusted_low"]) == pytest.approx(e["adjusted_low"])
        assert by_testid(page, f"difference-{e['driver']}") == f"{e['difference']:+.2f}"


async def test_the_journey_map_counts_each_stage_and_filters_by_persona(world: World) -> None:
    with world.ctx.engine.connect() as conn:
        stages = Counter(
            conn.execute(
                sa.select(customer_scores.c.lifecycle).where(
                    customer_scores.c.run_id == world.run.id
                )
            ).scalars()
        )
    view = insights.persona_view(world.ctx)
    biggest = int(view.clusters[0]["persona"])
    async with session(world.app, "analyst", "ja") as http:
        page = (await http.get("/journey-map")).text
        assert "カスタマージャーニーマップ" in page
        for stage, n in stages.items():
            assert by_testid(page, f"stage-{stage}") == f"{n:,}"
        rows = csv_rows(await http.get(f"/journey-map.csv?persona={biggest}"))
        filtered = (await http.get(f"/journey-map?persona={biggest}")).text
    assert sum(int(r["customers"]) for r in rows) == view.clusters[0]["customers"]
    assert f'<option value="{biggest}" selected>' in filtered
    whole = insights.journey_map(world.ctx)
    assert [c.stage for c in whole.columns] == [
        "new",
        "repeat",
        "loyal",
        "ambassador",
        "at_risk",
        "lapsed",
    ]
    repeat = next(c for c in whole.columns if c.stage == "repeat")
    assert repeat.conversion is not None and 0 <= repeat.conversion <= 1
    assert repeat.touchpoints and repeat.terms  # comments of the sample carry terms
