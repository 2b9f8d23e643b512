"""Journeys through HTTP: list and per-step stats equal the service's counts, the dry run
equals :func:`journeys.dry_run`, a bad step is named, activation and pause are audited,
analysts read only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.web.test_pages_world import World, build_world, by_testid, csv_rows, session, uow
from tests.web.webclient import csrf_of

from kizuna.bootstrap import Context
from kizuna.services import journeys
from kizuna.services.users import audit_log
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")
DOC = {
    "name": "thanks",
    "holdout_percent": 50,
    "trigger": {"segment_entry": "first"},
    "steps": [{"id": "t", "action": "create_task", "title": "thank {{ name }}"}],
}


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    return build_world(workspace, tmp_path / "sample")


async def test_step_stats_equal_the_services(world: World) -> None:
    stats = journeys.stats("welcome", uow(world.ctx))
    async with session(world.app, "analyst") as http:
        listing = csv_rows(await http.get("/journeys.csv"))
        row = next(r for r in listing if r["name"] == "welcome")
        assert int(row["runs"]) == sum(stats["runs"].values())
        assert int(row["completed"]) == stats["runs"].get("treated:completed", 0)
        page = (await http.get("/journeys/welcome")).text
        assert by_testid(page, "runs") == EN.number(sum(stats["runs"].values()))
        steps = {r["step"]: r for r in csv_rows(await http.get("/journeys/welcome/steps.csv"))}
        sends = {k.split(":")[0]: v for k, v in stats["sends"].items()}
        assert int(steps["call"]["sends"]) == sends["create_task"]
        assert int(steps["tag"]["sends"]) == sends["set_attribute"]
        assert 'data-testid="activate"' not in page and 'data-testid="pause"' not in page
        token = csrf_of(page)
        refused = await http.post(
            "/journeys/welcome/status", data={"csrf_token": token, "status": "paused"}
        )
        assert refused.status_code == 403


async def test_create_dry_run_activate_and_pause(world: World) -> None:
    expected = journeys.dry_run(DOC, uow(world.ctx))
    async with session(world.app, "marketer", "ja") as http:
        page = (await http.get("/journeys/new?starter=winback")).text
        assert "days_after_last_purchase" in page
        token = csrf_of(page)
        form = {"csrf_token": token, "definition": yaml.safe_dump(DOC), "do": "dry_run"}
        dry = (await http.post("/journeys/edit", data=form)).text
        holdout = sum(1 for e in expected if e.holdout)
        assert f"{len(expected)}人が対象です（うちホールドアウト{holdout}人）" in dry
        bad = {**DOC, "steps": [{"id": "t", "action": "no_such_action"}]}
        refused = await http.post(
            "/journeys/edit", data={**form, "definition": yaml.safe_dump(bad)}
        )
        assert refused.status_code == 422 and 'data-testid="node-error"' in refused.text
        saved = await http.post("/journeys/edit", data={**form, "do": "save"})
        assert saved.status_code == 303
        assert (
            await http.post(
                "/journeys/thanks/status", data={"csrf_token": token, "status": "active"}
            )
        ).status_code == 303
        assert "稼働中" in by_testid((await http.get("/journeys/thanks")).text, "journey-status")
        await http.post("/journeys/thanks/status", data={"csrf_token": token, "status": "paused"})
        assert "停止中" in by_testid((await http.get("/journeys/thanks")).text, "journey-status")
    actions = [(a["action"], a["detail"].get("status")) for a in audit_log(world.ctx.engine)]
    assert ("journey_status", "active") in actions and ("journey_status", "paused") in actions
