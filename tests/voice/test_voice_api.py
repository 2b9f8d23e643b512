"""/v1/surveys and /v1/feedback/themes: scopes, problem+json errors, links that work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.api.apiclient import Api, add_members, make_key

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.services.survey_links import submit_answer
from kizuna.services.uow import UnitOfWork

NPS = {
    "key": "nps-app",
    "kind": "nps",
    "title": {"ja": "アプリについて", "en": "About the app"},
    "questions": [{"id": "q1", "type": "text", "label": {"ja": "ご意見", "en": "Anything else?"}}],
}


@pytest.fixture
def api(workspace: Context) -> Iterator[Api]:
    add_members(workspace, 3)
    keys = {s: make_key(workspace, s) for s in ("admin", "marketer", "analyst", "pos")}
    with TestClient(create_app(workspace), raise_server_exceptions=False) as client:
        yield Api(client, workspace, keys)


def test_create_list_and_issue_links_with_scopes(api: Api) -> None:
    created = api.post("/v1/surveys", NPS, "marketer")
    assert created.status_code == 201, created.text  # type: ignore[attr-defined]
    assert created.json()["outcome"] == "created"  # type: ignore[attr-defined]
    assert api.post("/v1/surveys", NPS, "marketer").status_code == 200  # type: ignore[attr-defined]
    refused = api.post("/v1/surveys", NPS, "analyst")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert refused.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    link = api.post("/v1/surveys/nps-app/links", {"customer_id": "M00001"}, "marketer")
    assert link.status_code == 201, link.text  # type: ignore[attr-defined]
    url = link.json()["url"]  # type: ignore[attr-defined]
    token = url.rsplit("/", 1)[1]
    submit_answer(UnitOfWork(api.ctx.engine, api.ctx.settings), token, "4", "アプリが重い")
    listed = api.get("/v1/surveys", "analyst").json()["items"]  # type: ignore[attr-defined]
    assert [(s["key"], s["invited"], s["answered"], s["detractors"]) for s in listed] == [
        ("nps-app", 1, 1, 1)
    ]
    assert api.get("/v1/surveys", "pos").status_code == 403  # type: ignore[attr-defined]


def test_bad_input_gets_problem_json_not_500(api: Api) -> None:
    api.post("/v1/surveys", NPS, "admin")
    cases = [
        ("/v1/surveys", {**NPS, "kind": "stars"}, 422),
        ("/v1/surveys", {**NPS, "title": {"ja": "題"}}, 422),
        ("/v1/surveys", {**NPS, "kind": "csat"}, 422),  # a key keeps its kind
        ("/v1/surveys/nope/links", {"customer_id": "M00001"}, 404),
        ("/v1/surveys/nps-app/links", {"customer_id": "nobody"}, 404),
        ("/v1/surveys/nps-app/links", {}, 422),
    ]
    for path, body, status in cases:
        response = api.post(path, body, "admin")
        assert response.status_code == status, (path, body, response.text)  # type: ignore[attr-defined]
        assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
        assert response.json()["detail"]  # type: ignore[attr-defined]


def test_feedback_themes_aggregates(api: Api) -> None:
    api.post("/v1/surveys", NPS, "admin")
    for member, score, text in (("M00000", 2, "配送が遅い"), ("M00001", 10, "対応がとても丁寧でした"),
                                ("M00002", 1, "配送が遅くて残念")):  # fmt: skip
        url = api.post("/v1/surveys/nps-app/links", {"customer_id": member}).json()["url"]  # type: ignore[attr-defined]
        submit_answer(
            UnitOfWork(api.ctx.engine, api.ctx.settings), url.rsplit("/", 1)[1], str(score), text
        )
    body = api.get("/v1/feedback/themes", "analyst", churn="true").json()  # type: ignore[attr-defined]
    assert body["comments"] == 3
    assert body["detractor_terms"][0]["term"] in ("遅い", "配送", "配送 遅い")
    assert {t["term"] for t in body["promoter_terms"]} >= {"丁寧"}
    delivery = next(t for t in body["themes"] if t["theme"] == "delivery")
    assert delivery["comments"] == 2 and delivery["detractor_share"] == 1.0
    assert "churn" in body
    bad = api.get("/v1/feedback/themes", "analyst", source="tweets")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert api.get("/v1/feedback/themes", "pos").status_code == 403  # type: ignore[attr-defined]


def test_unused_key_fixture_is_harmless(workspace: Context) -> None:
    assert make_key(workspace, "analyst").startswith("kz_")
