"""/v1/segments, /v1/journeys and /v1/measures through HTTP: CRUD, previews, runs, scopes."""

from __future__ import annotations

import sqlalchemy as sa
from tests.api.apiclient import Api
from tests.api.test_v1_customers import PROBLEM, walk

from kizuna.services.journeys import enroll
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

TOKYO = {"field": "region", "op": "eq", "value": "Tokyo"}
JOURNEY = {
    "name": "tokyo-task",
    "holdout_percent": 0,
    "trigger": {"segment_entry": "tokyo"},
    "steps": [{"id": "call", "action": "create_task", "title": "Call {{ name }}"}],
}


def _regions(api: Api, tokyo: list[str]) -> None:
    with api.ctx.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id.in_(tokyo))
            .values(region="Tokyo", name="山田 太郎")
        )


def test_segment_lifecycle_create_preview_members_replace_delete(api: Api) -> None:
    _regions(api, ["M00001", "M00002", "M00004"])
    preview = api.post("/v1/segments/preview", {"rule": TOKYO, "sample": 2}, scope="analyst")
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 3 and len(preview.json()["sample"]) == 2
    assert preview.json()["sample"][0]["name"] == "山田 *"  # masked for analysts

    created = api.post("/v1/segments", {"name": "tokyo", "description": "d", "rule": TOKYO})
    assert created.status_code == 201, created.text
    assert created.json()["member_count"] == 3 and created.json()["rule"] == TOKYO
    members = walk(api, "/v1/segments/tokyo/members", limit=2)
    assert [m["customer_id"] for m in members] == ["M00001", "M00002", "M00004"]

    again = api.post("/v1/segments", {"name": "tokyo", "rule": TOKYO})
    assert again.status_code == 409 and "PUT /v1/segments/tokyo" in again.json()["detail"]

    everyone = {"field": "region", "op": "is_set"}
    replaced = api.client.put(
        "/v1/segments/tokyo", json={"rule": {"not": everyone}}, headers=api.headers()
    )
    assert replaced.status_code == 200 and replaced.json()["member_count"] == 2
    _regions(api, ["M00000"])
    refreshed = api.post("/v1/segments/tokyo/refresh", {})
    assert refreshed.json() == {
        "segment": "tokyo",
        "entered": 0,
        "exited": 1,
        "members": 1,
        "refresh_id": refreshed.json()["refresh_id"],
    }
    listed = walk(api, "/v1/segments", scope="analyst", limit=1)
    assert [s["name"] for s in listed] == ["tokyo"]

    assert api.client.delete("/v1/segments/tokyo", headers=api.headers()).status_code == 204
    assert api.get("/v1/segments/tokyo").status_code == 404


def test_segment_errors_point_at_the_bad_node_and_scopes_are_enforced(api: Api) -> None:
    bad = api.post("/v1/segments", {"name": "x", "rule": {"field": "shoe_size", "value": 1}})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert "/rule/field" in bad.json()["detail"] and "shoe_size" in bad.json()["detail"]
    no_rule = api.post("/v1/segments", {"name": "x"})
    assert no_rule.status_code == 422 and "rule" in no_rule.json()["detail"]
    assert (
        api.post("/v1/segments", {"name": "x", "rule": TOKYO}, scope="analyst").status_code == 403
    )
    assert api.get("/v1/segments", scope="pos").status_code == 403
    assert api.post("/v1/segments/nope/refresh", {}).status_code == 404


def test_journey_lifecycle_with_dry_run_stats_and_measure(api: Api) -> None:
    _regions(api, ["M00001", "M00002"])
    api.post("/v1/segments", {"name": "tokyo", "rule": TOKYO})
    created = api.post("/v1/journeys", JOURNEY, scope="marketer")
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"
    dry = api.post("/v1/journeys/dry-run", {**JOURNEY, "trigger": {"birthday": {}}})
    assert dry.status_code == 200 and dry.json()["would_enter"] == 0

    active = api.post("/v1/journeys/tokyo-task/activate", {})
    assert active.json()["status"] == "active"
    # Who entered the segment since the journey started: re-enter by refresh.
    _regions(api, ["M00003"])
    api.post("/v1/segments/tokyo/refresh", {})
    enroll("tokyo-task", UnitOfWork(api.ctx.engine, api.ctx.settings))
    stats = api.get("/v1/journeys/tokyo-task/stats", scope="analyst").json()
    assert sum(stats["runs"].values()) >= 1
    assert stats["steps"] and stats["steps"][0]["step_id"] == "call"

    paused = api.post("/v1/journeys/tokyo-task/pause", {})
    assert paused.json()["status"] == "paused"
    refused = api.client.delete("/v1/journeys/tokyo-task", headers=api.headers())
    assert refused.status_code == 409 and "pause" in refused.json()["detail"]
    in_use = api.client.delete("/v1/segments/tokyo", headers=api.headers())
    assert in_use.status_code == 409 and "tokyo-task" in in_use.json()["detail"]

    measure = api.client.put(
        "/v1/measures/tokyo-task",
        json={"objective": "more visits", "kpi": "conversion_rate", "target": 0.1},
        headers=api.headers(),
    )
    assert measure.status_code == 200, measure.text
    body = measure.json()
    assert body["kpi"] == "conversion_rate" and body["treated"]["customers"] >= 1
    # No hold-out: the uplift is unknown, and says so with null (not NaN, not a 500).
    assert body["conversion_uplift"]["estimate"] is None
    assert [m["journey"] for m in walk(api, "/v1/measures", limit=1)] == ["tokyo-task"]


def test_journey_errors(api: Api) -> None:
    broken = api.post("/v1/journeys", {**JOURNEY, "steps": [{"id": "x", "action": "fax"}]})
    assert broken.status_code == 422 and broken.headers["content-type"] == PROBLEM
    api.post("/v1/journeys", JOURNEY)
    dup = api.post("/v1/journeys", JOURNEY)
    assert dup.status_code == 409 and "PUT /v1/journeys/tokyo-task" in dup.json()["detail"]
    renamed = api.client.put(
        "/v1/journeys/tokyo-task", json={**JOURNEY, "name": "other"}, headers=api.headers()
    )
    assert renamed.status_code == 422 and "renamed" in renamed.json()["detail"]
    assert api.post("/v1/journeys/tokyo-task/activate", {}, scope="analyst").status_code == 403
    assert api.get("/v1/journeys/none/stats").status_code == 404
    bad_kpi = api.client.put(
        "/v1/measures/tokyo-task",
        json={"objective": "o", "kpi": "happiness", "target": 1},
        headers=api.headers(),
    )
    assert bad_kpi.status_code == 422 and "kpi" in bad_kpi.json()["detail"]
    assert api.client.delete("/v1/journeys/tokyo-task", headers=api.headers()).status_code == 204
    assert [j["name"] for j in walk(api, "/v1/journeys")] == []
