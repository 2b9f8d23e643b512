"""The advocacy API through the ASGI app: scopes, problem+json errors, the whole flow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.advocacy.conftest import T0, order, points_of
from tests.api.apiclient import Api, add_members, make_key

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.services import referrals
from kizuna.services.programme import config

PROBLEM = "application/problem+json"


@pytest.fixture
def api(workspace: Context) -> Iterator[Api]:
    config.forget_cache()
    add_members(workspace, 3)
    keys = {s: make_key(workspace, s) for s in ("admin", "marketer", "analyst", "pos")}
    with TestClient(create_app(workspace), raise_server_exceptions=False) as client:
        yield Api(client, workspace, keys)
    config.forget_cache()


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def problem(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    return str(resp.json().get("detail", ""))


def test_referral_flow_over_http(api: Api) -> None:
    code = ok(api.get("/v1/members/M00000/referral-code", "analyst"))["code"]
    body = ok(api.post("/v1/referrals", {"member_id": "M00001", "code": code}, "pos"), 201)
    assert body["referrer_id"] == "M00000" and body["status"] == "pending"
    ok(api.post("/v1/referrals", {"member_id": "M00001", "code": code}, "pos"), 200)
    assert "unknown referral code" in problem(
        api.post("/v1/referrals", {"member_id": "M00002", "code": "ZZZZZZZZ"}, "pos"), 404
    )
    problem(api.post("/v1/referrals", {"member_id": "M00002", "code": code}, "analyst"), 403)
    problem(api.post("/v1/referrals", {"member_id": "M00002"}, "admin"), 422)
    listed = ok(api.get("/v1/referrals", "analyst", status="pending"))["referrals"]
    assert [r["referee_id"] for r in listed] == ["M00001"]
    problem(api.get("/v1/referrals", "analyst", status="bogus"), 422)
    problem(api.get("/v1/referrals/999", "analyst"), 404)


def test_ambassador_flow_over_http(api: Api) -> None:
    for status in ("invited", "accepted", "active"):
        ok(
            api.post(
                "/v1/ambassadors/M00000/status", {"status": status, "actor": "sato"}, "marketer"
            )
        )
    assert "next steps" in problem(
        api.post("/v1/ambassadors/M00001/status", {"status": "active", "actor": "x"}), 409
    )
    task = {"task_id": "t1", "kind": "review", "title": "Review it", "points": 120, "actor": "sato"}
    ok(api.post("/v1/ambassadors/M00000/tasks", task, "marketer"), 201)
    done = {"actor": "sato", "reach": 40}
    ok(api.post("/v1/ambassador-tasks/t1/complete", done, "marketer"), 201)
    ok(api.post("/v1/ambassador-tasks/t1/complete", done, "marketer"), 200)
    row = ok(api.get("/v1/ambassadors", "analyst"))["ambassadors"][0]
    assert (row["member_id"], row["status"], row["reach"], row["points"]) == (
        "M00000",
        "active",
        40,
        120,
    )
    assert ok(api.get("/v1/ambassadors/M00000", "analyst"))["activated_by"] == "sato"
    assert isinstance(ok(api.get("/v1/ambassadors/candidates", "analyst"))["candidates"], list)
    problem(api.post("/v1/ambassadors/M00000/tasks", {**task, "kind": "dance"}), 422)


def test_community_and_review_flow_over_http(api: Api) -> None:
    ev = {"event_id": "e1", "name": "Webinar", "kind": "webinar", "starts_at": T0.isoformat(),
          "online": True, "url": "https://meet.example/x", "capacity": 1}  # fmt: skip
    ok(api.post("/v1/community/events", ev, "marketer"), 201)
    ok(api.post("/v1/community/events/e1/registrations", {"member_id": "M00000"}), 201)
    assert "full" in problem(
        api.post("/v1/community/events/e1/registrations", {"member_id": "M00001"}), 409
    )
    checked = {"attendees": [{"member_id": "M00000"}, {"member_id": "nobody"}]}
    assert "nobody" in problem(api.post("/v1/community/events/e1/check-ins", checked), 422)
    checked = {"attendees": [{"member_id": "M00000"}, {"member_id": "M00001"}]}
    assert ok(api.post("/v1/community/events/e1/check-ins", checked))["checked_in"] == 2
    assert ok(api.get("/v1/community/events/e1", "analyst"))["attended"] == 2
    assert ok(api.get("/v1/community/metrics", "analyst"))["attendees"] == 2

    review = {"review_id": "r1", "member_id": "M00002", "rating": 5, "text": "配送が早い",
              "channel": "google", "url": "https://g.example/r1"}  # fmt: skip
    ok(api.post("/v1/reviews", review, "pos"), 201)
    assert [r["review_id"] for r in ok(api.get("/v1/reviews", "analyst"))["reviews"]] == ["r1"]
    assert "say why" in problem(
        api.post("/v1/reviews/r1/moderation", {"status": "rejected", "actor": "m"}), 422
    )
    approved = ok(api.post("/v1/reviews/r1/moderation", {"status": "approved", "actor": "m"}))
    assert approved["points"] == 50 and "name" not in approved
    problem(api.post("/v1/reviews", {**review, "review_id": "r2", "rating": 7}, "pos"), 422)


def test_settled_referral_shows_its_fraud_reasons(api: Api) -> None:
    ctx = api.ctx
    code = ok(api.get("/v1/members/M00000/referral-code"))["code"]
    ok(api.post("/v1/referrals", {"member_id": "M00000", "code": code, "at": T0.isoformat()}), 201)
    order(ctx, "o1", 1, T0)
    referrals.settle(ctx.engine, ctx.settings, T0.replace(month=5))
    row = ok(api.get("/v1/referrals", "analyst"))["referrals"][0]
    assert (row["status"], row["reasons"]) == ("rejected", ["self_referral"])
    assert points_of(ctx, 1) == 0
