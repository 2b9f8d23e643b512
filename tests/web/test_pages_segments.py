"""Segments through HTTP: the preview equals the service's, a bad node is named by its
path, saving stores the definition, analysts read only and get masked members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.web.test_pages_world import World, build_world, by_testid, csv_rows, session, uow
from tests.web.webclient import csrf_of

from kizuna.bootstrap import Context
from kizuna.services import segments
from kizuna.web.format import Formatter

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")
RULE = {"and": [{"aggregate": "orders", "op": "gte", "value": 3}, {"consent": "email"}]}


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    return build_world(workspace, tmp_path / "sample")


async def test_preview_save_and_refresh_a_segment(world: World) -> None:
    expected = segments.preview({"name": "x", "rule": RULE}, uow(world.ctx))
    assert expected.count > 0
    async with session(world.app, "marketer") as http:
        page = (await http.get("/segments/new")).text
        assert 'id="segment-registry"' in page and '"points_available"' in page
        token = csrf_of(page)
        form = {"csrf_token": token, "name": "repeaters", "rule": json.dumps(RULE), "do": "preview"}
        shown = (await http.post("/segments/edit", data=form)).text
        assert by_testid(shown, "preview-count") == EN.number(expected.count)
        assert expected.sample[0]["external_id"] in shown
        saved = await http.post("/segments/edit", data={**form, "do": "save"})
        assert (
            saved.status_code == 303 and saved.headers["location"] == "/segments/repeaters?saved=1"
        )
        with uow(world.ctx) as work:
            _, stored = segments.get_definition("repeaters", work)
        assert stored.document["rule"] == RULE
        again = await http.post("/segments/edit", data={**form, "do": "save"})
        assert again.status_code == 422 and "exists" in again.text
        refreshed = await http.post("/segments/repeaters/refresh", data={"csrf_token": token})
        assert refreshed.status_code == 303
        listing = csv_rows(await http.get("/segments.csv"))
        assert {r["name"]: int(r["members"]) for r in listing}["repeaters"] == expected.count


async def test_a_bad_node_is_named_by_its_path(world: World) -> None:
    bad = {"and": [{"consent": "email"}, {"aggregate": "orders", "op": "gte", "value": "three"}]}
    async with session(world.app, "admin", "ja") as http:
        token = csrf_of((await http.get("/segments/new")).text)
        form = {"csrf_token": token, "name": "bad", "rule": json.dumps(bad), "do": "preview"}
        response = await http.post("/segments/edit", data=form)
        assert response.status_code == 422
        assert 'data-error-path="/rule/and/1/value"' in response.text
        assert "/rule/and/1/value" in by_testid(response.text, "rule-error")
        yaml_error = await http.post("/segments/edit", data={**form, "rule": "and: [unclosed"})
        assert yaml_error.status_code == 422


async def test_analysts_read_segments_but_cannot_change_them(world: World) -> None:
    async with session(world.app, "analyst") as http:
        listing = (await http.get("/segments")).text
        assert 'data-segment="first"' in listing and "/segments/new" not in listing
        page = (await http.get("/segments/first")).text
        assert 'data-testid="save"' not in page
        token = csrf_of(page)
        form = {"csrf_token": token, "name": "x", "rule": json.dumps(RULE), "do": "preview"}
        assert (await http.post("/segments/edit", data=form)).status_code == 403
        assert (
            await http.post("/segments/first/refresh", data={"csrf_token": token})
        ).status_code == 403
        members = csv_rows(await http.get("/segments/first/members.csv"))
        assert len(members) == 1 and "***" in members[0]["email"]
    async with session(world.app, "marketer") as http:
        members = csv_rows(await http.get("/segments/first/members.csv"))
        assert "***" not in members[0]["email"]
