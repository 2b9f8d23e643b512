"""Earning, quoting, redeeming and refunding through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from tests.api.apiclient import Api

from kizuna.store import programme_tables as pt


def order(order_id: str, member: str = "M00000", *amounts: int, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "member_id": member,
        "lines": [{"amount": a} for a in (amounts or (1000,))],
        **extra,
    }


def test_an_order_earns_points_with_its_explanation(api: Api) -> None:
    r = api.post("/v1/orders", order("O1", "M00000", 1980, 550), scope="pos")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["points"] == 25  # (1980 + 550) / 100, floored once per order
    assert [x["points"] for x in body["lines"]] == [20, 5]
    assert body["balance"]["available"] == 25
    assert "floor" in body["explanation"][0]
    s = api.get("/v1/members/M00000").json()
    assert s["balance"]["available"] == 25
    assert s["progress"]["qualifying"] == 25


def test_a_retry_with_the_same_key_returns_the_first_result_and_earns_once(api: Api) -> None:
    first = api.post("/v1/orders", order("O2"), key="k-1")
    again = api.post("/v1/orders", order("O2"), key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert api.get("/v1/members/M00000").json()["balance"]["available"] == 10
    other = api.post("/v1/orders", order("O3", "M00000", 5000), key="k-1")
    assert other.status_code == 409 and "different request" in other.json()["detail"]


def test_the_same_order_under_a_new_key_is_refused_not_earned_twice(api: Api) -> None:
    assert api.post("/v1/orders", order("O4")).status_code == 201
    r = api.post("/v1/orders", order("O4"))
    assert r.status_code == 409 and "already earned" in r.json()["detail"]


def test_quote_writes_nothing(api: Api) -> None:
    r = api.post("/v1/quotes", {"member_id": "M00001", "lines": [{"amount": 12345}]}, scope="pos")
    assert r.status_code == 200 and r.json()["points"] == 123
    with api.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.ledger_entries)).scalar() == 0


def test_redeem_reserve_confirm_and_cancel(api: Api) -> None:
    api.post("/v1/orders", order("O5", "M00001", 10000))
    r = api.post(
        "/v1/members/M00001/redemptions", {"redemption_id": "R1", "points": 30}, scope="pos"
    )
    assert r.status_code == 201 and r.json()["balance"]["available"] == 70
    r = api.post(
        "/v1/members/M00001/redemptions", {"redemption_id": "R2", "points": 50, "hold": True}
    )
    assert r.json()["balance"] == {"available": 20, "pending": 0, "reserved": 50, "owed": 0}
    assert api.post("/v1/redemptions/R2/confirm", {}).json()["balance"]["reserved"] == 0
    r = api.post("/v1/redemptions/R1/cancel", {})
    assert r.status_code == 200 and r.json()["balance"]["available"] == 50
    too_much = api.post("/v1/members/M00001/redemptions", {"redemption_id": "R3", "points": 51})
    assert too_much.status_code == 422 and "only 50 are available" in too_much.json()["detail"]


def test_partial_then_full_refund_reverses_exactly_what_the_lines_earned(api: Api) -> None:
    api.post("/v1/orders", order("O6", "M00002", 999, 1001))  # 20 points: lines share 10 + 10
    r = api.post(
        "/v1/orders/O6/refunds",
        {"refund_id": "F1", "lines": [{"line_no": 1, "amount": 500}]},
        scope="pos",
    )
    assert r.status_code == 201, r.text
    first = r.json()["reversed_points"]
    r = api.post("/v1/orders/O6/refunds", {"refund_id": "F2"})
    assert first + r.json()["reversed_points"] == 20
    assert r.json()["balance"]["available"] == 0
    over = api.post(
        "/v1/orders/O6/refunds", {"refund_id": "F3", "lines": [{"line_no": 1, "amount": 1}]}
    )
    assert over.status_code == 422 and "between 0 and 0" in over.json()["detail"]


def test_refund_of_spent_points_leaves_a_debt_repaid_by_later_earnings(api: Api) -> None:
    api.post("/v1/orders", order("O7", "M00003", 10000))
    api.post("/v1/members/M00003/redemptions", {"redemption_id": "R9", "points": 100})
    r = api.post("/v1/orders/O7/refunds", {"refund_id": "F9"}).json()
    assert r["taken_by_policy"] == 100 and r["balance"]["available"] == -100
    r = api.post("/v1/orders", order("O8", "M00003", 15000)).json()
    assert r["balance"]["available"] == 50 and r["balance"]["owed"] == 0


def test_bad_input_is_a_4xx_problem_that_says_what_to_fix(api: Api) -> None:
    cases = [
        (order("X1", "NOBODY"), 404, "unknown member"),
        (order("X2", "M00000", -5), 422, "negative"),
        (order("X3", "M00000", 10**15), 422, "absurdly large"),
        (order("X4", "M00000", 100, currency="XYZ"), 422, "currency"),
        (
            {"order_id": "X5", "member_id": "M00000", "lines": [{"amount": 12.5}]},
            422,
            "lines.0.amount",
        ),
        ({"order_id": "X6", "member_id": "M00000", "lines": []}, 422, "lines"),
        (order("X7", "M00000", 100, coupon_code="NOPE-NOPE"), 404, "no coupon"),
    ]
    for body, status, words in cases:
        r = api.post("/v1/orders", body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert words in r.json()["detail"], r.json()
    r = api.client.post("/v1/orders", content=b"{not json", headers=api.headers())
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = api.client.post(
        "/v1/orders", json=order("X8"), headers={"Authorization": f"Bearer {api.keys['admin']}"}
    )
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]


def test_keys_and_scopes(api: Api) -> None:
    r = api.client.get("/v1/members/M00000")
    assert r.status_code == 401 and "Authorization" in r.json()["detail"]
    for bad in ("Bearer nonsense", "Basic abc", "Bearer kz_12345678_wrong"):
        r = api.client.get("/v1/members/M00000", headers={"Authorization": bad})
        assert r.status_code == 401, bad
    # A till reads the member's summary (balance and tier), not the ledger.
    assert api.get("/v1/members/M00000", scope="pos").status_code == 200
    r = api.get("/v1/members/M00000/ledger", scope="pos")
    assert r.status_code == 403 and "pos key may not read" in r.json()["detail"]
    r = api.post("/v1/members/M00000/adjustments", {"points": 5, "reason": "goodwill"}, scope="pos")
    assert r.status_code == 403
    r = api.post("/v1/orders", order("S1"), scope="analyst")
    assert r.status_code == 403
    assert api.get("/v1/members/M00000", scope="analyst").status_code == 200
    r = api.post(
        "/v1/members/M00000/adjustments", {"points": 5, "reason": "goodwill"}, scope="marketer"
    )
    assert r.status_code == 201
    entry = api.get("/v1/members/M00000/ledger").json()["items"][0]
    assert (
        entry["kind"] == "adjust"
        and entry["actor"] == "api-key:test-marketer"
        and entry["reason"] == "goodwill"
    )


def test_openapi_is_published(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert "/v1/orders" in doc["paths"] and "/v1/members/{member_id}/redemptions" in doc["paths"]


def test_the_first_purchase_earns_the_first_purchase_action_once(api: Api) -> None:
    doc = api.get("/v1/programme").json()["document"]
    doc.setdefault("actions", {})["first_purchase"] = 200
    assert api.client.put("/v1/programme", json=doc, headers=api.headers()).status_code == 200
    first = api.post("/v1/orders", order("F1", "M00004", 1000)).json()
    assert first["first_purchase_bonus"] == 200 and first["balance"]["available"] == 210
    second = api.post("/v1/orders", order("F2", "M00004", 1000)).json()
    assert second["first_purchase_bonus"] == 0 and second["balance"]["available"] == 220
    assert api.get("/v1/programme", scope="analyst").json()["version"] >= 2


def test_the_till_routes_tried_first_are_shadowed_by_no_other_route() -> None:
    """``kizuna.api.HOT_MODULES`` go first in routing (a POS call skips ~60
    regular expressions); that is only safe while no other module has a route
    matching one of their paths with the same method, which this checks."""
    import importlib
    import re

    from fastapi.routing import APIRoute

    from kizuna.api import HOT_MODULES, _routers

    routers = _routers()
    hot = [importlib.import_module(f"kizuna.api.{name}").router for name in HOT_MODULES]
    assert routers[: len(hot)] == hot
    for router in hot:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            sample = re.sub(r"\{[^}]+\}", "X1", route.path)
            for other in routers[len(hot) :]:
                for candidate in other.routes:
                    if isinstance(candidate, APIRoute) and candidate.methods & route.methods:
                        assert not candidate.path_regex.match(sample), (route.path, candidate.path)
