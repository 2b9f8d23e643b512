"""/v1/customers: list with cursor paging, profile, 360 timeline, masking and scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from tests.api.apiclient import Api

from kizuna.store import tables as t

PROBLEM = "application/problem+json"


def walk(api: Api, path: str, scope: str = "admin", **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor; asserts the Link header matches."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = api.client.get(path, headers=api.headers(scope), params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in r.headers
            return items
        assert r.headers["link"].endswith('>; rel="next"') and cursor in r.headers["link"]
    raise AssertionError("the walk never ended")


def test_walking_the_customer_list_shows_everyone_once_in_id_order(api: Api) -> None:
    items = walk(api, "/v1/customers", limit=2)
    ids = [i["customer_id"] for i in items]
    assert ids == sorted(ids) == [f"M{i:05d}" for i in range(5)]


def test_a_tampered_or_foreign_cursor_is_refused_with_a_fix(api: Api) -> None:
    first = api.get("/v1/customers", limit=2).json()
    cursor = first["next_cursor"]
    bad = api.get("/v1/customers", limit=2, cursor=cursor[:-2] + "xx")
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert "without `cursor`" in bad.json()["detail"]
    # A cursor of one list does not work on another.
    foreign = api.get("/v1/segments", cursor=cursor)
    assert foreign.status_code == 422
    assert api.get("/v1/customers", limit=501).status_code == 422


def test_search_and_profile(api: Api) -> None:
    with api.ctx.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id == "M00003")
            .values(name="山田 太郎", email="taro@example.jp", phone="090-1234-5678")
        )
    found = api.get("/v1/customers", q="taro").json()["items"]
    assert [c["customer_id"] for c in found] == ["M00003"]
    profile = api.get("/v1/customers/M00003").json()
    assert profile["customer"]["email"] == "taro@example.jp"
    assert profile["customer"]["stats"]["orders"] == 0
    assert profile["currency"] == "JPY"


def test_analyst_keys_see_personal_data_masked_and_search_by_id_only(api: Api) -> None:
    with api.ctx.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id == "M00003")
            .values(name="山田 太郎", email="taro@example.jp", phone="090-1234-5678")
        )
    profile = api.get("/v1/customers/M00003", scope="analyst").json()["customer"]
    assert profile["name"] == "山田 *"
    assert profile["email"] == "t***@example.jp"
    assert profile["phone"] == "***-****-**78"
    assert api.get("/v1/customers", scope="analyst", q="taro").json()["items"] == []
    listed = api.get("/v1/customers", scope="analyst", q="M00003").json()["items"]
    assert listed[0]["email"] == "t***@example.jp"


def test_the_timeline_walks_newest_first_without_gaps_or_repeats(api: Api) -> None:
    with api.ctx.engine.begin() as conn:
        pk = conn.execute(
            sa.select(t.customers.c.id).where(t.customers.c.external_id == "M00001")
        ).scalar_one()
        base = datetime(2026, 1, 1, tzinfo=UTC)
        conn.execute(
            sa.insert(t.events),
            [
                {
                    "external_id": f"E{i}",
                    "customer_id": pk,
                    "type": "page_view",
                    # Pairs share an instant: a page must never split them.
                    "occurred_at": base + timedelta(hours=i // 2),
                    "page": f"/p/{i}",
                }
                for i in range(11)
            ],
        )
    items = walk(api, "/v1/customers/M00001/timeline", limit=3)
    pages = [i["detail"].get("page") for i in items if i["kind"] == "event"]
    assert sorted(pages) == sorted(f"/p/{i}" for i in range(11))
    assert len(pages) == len(set(pages)) == 11
    instants = [i["at"] for i in items]
    assert instants == sorted(instants, reverse=True)
    only = api.get("/v1/customers/M00001/timeline", kind="order").json()
    assert only["items"] == []
    unknown = api.get("/v1/customers/M00001/timeline", kind="shoe")
    assert unknown.status_code == 422 and "shoe" in unknown.json()["detail"]


def test_errors_are_problems_that_say_what_to_do(api: Api) -> None:
    missing = api.get("/v1/customers/NOPE")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "NOPE" in missing.json()["detail"]
    pos = api.get("/v1/customers", scope="pos")
    assert pos.status_code == 403 and "scope" in pos.json()["detail"]
    anonymous = api.client.get("/v1/customers")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
