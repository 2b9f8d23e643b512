"""The programme pages through HTTP: tiers, the simulator, rewards, coupons and liability
equal the programme services; editors change the configuration, analysts cannot."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from markupsafe import escape
from tests.web.test_pages_world import World, build_world, by_testid, csv_rows, session, uow
from tests.web.webclient import csrf_of

from kizuna.bootstrap import Context
from kizuna.services.programme import config
from kizuna.services.programme.liability import liability
from kizuna.services.programme.orders import OrderLine, RecordOrder, quote
from kizuna.services.programme.rewards import catalogue
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    return build_world(workspace, tmp_path / "sample")


async def test_the_page_shows_tiers_liability_and_the_simulators_answer(world: World) -> None:
    with uow(world.ctx) as work:
        owed = liability(work)
        expected = quote(
            work, RecordOrder("simulation", "", (OrderLine(1, 5480), OrderLine(2, 1200)))
        )
        programme = config.active_programme(work).programme
    async with session(world.app, "analyst") as http:
        page = (await http.get("/programme")).text
        for tier in programme.tiers:
            assert f'data-tier="{tier.name}"' in page
        assert by_testid(page, "outstanding") == EN.number(owed["outstanding_points"])
        sim = (await http.get("/programme?simulate=1&amount1=5480&amount2=1200")).text
        assert by_testid(sim, "sim-points") == EN.number(expected["points"])
        for step in expected["explanation"]:
            assert str(escape(step)) in sim
        bad = (await http.get("/programme?simulate=1&amount1=12x")).text
        assert "whole number" in by_testid(bad, "sim-error")
        tiers = csv_rows(await http.get("/programme/tiers.csv"))
        assert [r["tier"] for r in tiers] == [t.name for t in programme.tiers]
        months = csv_rows(await http.get("/programme/liability.csv"))
        assert sum(int(r["points"]) for r in months) == sum(
            m["points"] for m in owed["expiring_by_month"]
        )
        # Analysts read only: no forms, and posting is refused even with a valid token.
        assert 'data-testid="reward-form"' not in page
        token = csrf_of(page)
        refused = await http.post(
            "/programme/rewards",
            data={"csrf_token": token, "reward_id": "R1", "name": "x", "points_cost": "10"},
        )
        assert refused.status_code == 403
        assert (await http.get("/programme/edit")).status_code == 403


async def test_editors_add_rewards_coupons_and_a_new_programme_version(world: World) -> None:
    async with session(world.app, "marketer", "ja") as http:
        page = (await http.get("/programme")).text
        assert "ポイントプログラム" in page and "シミュレーター" in page
        token = csrf_of(page)
        added = await http.post(
            "/programme/rewards",
            data={
                "csrf_token": token,
                "reward_id": "MUG",
                "name": "マグカップ",
                "points_cost": "500",
                "stock": "20",
            },
        )
        assert added.status_code == 303
        with uow(world.ctx) as work:
            assert [r["reward_id"] for r in catalogue(work)] == ["MUG"]
        twice = await http.post(
            "/programme/rewards",
            data={"csrf_token": token, "reward_id": "MUG", "name": "x", "points_cost": "500"},
        )
        assert twice.status_code == 422 and "already exists" in twice.text
        made = await http.post(
            "/programme/coupons",
            data={
                "csrf_token": token,
                "batch": "WINTER",
                "kind": "percent",
                "value": "10",
                "count": "3",
            },
        )
        assert made.status_code == 200
        codes = re.search(r'data-testid="codes"[^>]*>(.*?)</textarea>', made.text, re.S)
        assert codes and len(codes.group(1).split()) == 3
        batches = csv_rows(await http.get("/programme/coupons.csv"))
        assert [(b["batch"], b["codes"]) for b in batches] == [("WINTER", "3")]
        no_token = await http.post(
            "/programme/coupons", data={"batch": "X", "value": "1", "count": "1"}
        )
        assert no_token.status_code == 403

        edit = (await http.get("/programme/edit")).text
        text = re.search(r"<textarea[^>]*>(.*?)</textarea>", edit, re.S)
        assert text
        document = html.unescape(text.group(1)).replace("base_points = 1", "base_points = 2")
        wrong = await http.post(
            "/programme/edit", data={"csrf_token": token, "document": "[earning]\nbase_points = -1"}
        )
        assert wrong.status_code == 422 and 'data-testid="programme-error"' in wrong.text
        saved = await http.post("/programme/edit", data={"csrf_token": token, "document": document})
        assert saved.status_code == 303
        config.forget_cache()
        with uow(world.ctx) as work:
            assert config.active_programme(work).programme.base_points == 2
