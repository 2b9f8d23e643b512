"""/v1/imports: JSON batches and file uploads, all or nothing, every bad row reported."""

from __future__ import annotations

from tests.api.apiclient import Api
from tests.api.test_v1_customers import PROBLEM
from tests.helpers import count

CUSTOMERS = [{"customer_id": "C1", "name": "山田 太郎"}, {"customer_id": "C2"}]
ORDER = {"order_id": "O1", "customer_id": "C1", "ordered_at": "2026-11-20T12:00:00+09:00"}


def batch() -> dict[str, object]:
    return {
        "customers": CUSTOMERS,
        "orders": [{**ORDER, "total_amount": 4800}],
        "events": [
            {
                "event_id": "E1",
                "customer_id": "C2",
                "type": "page_view",
                "occurred_at": "2026-11-21T09:00:00+09:00",
            }
        ],
        "survey_answers": [
            {
                "answer_id": "A1",
                "customer_id": "C1",
                "kind": "nps",
                "score": 9,
                "answered_at": "2026-11-22T10:00:00+09:00",
            }
        ],
        "contacts": [
            {
                "contact_id": "T1",
                "customer_id": "C2",
                "touchpoint": "call_centre",
                "opened_at": "2026-11-23T10:00:00+09:00",
            }
        ],
    }


def test_a_json_batch_lands_whole_and_a_retry_changes_nothing(api: Api) -> None:
    first = api.post("/v1/imports", batch(), scope="marketer")
    assert first.status_code == 201, first.text
    kinds = first.json()["kinds"]
    assert {k: v["inserted"] for k, v in kinds.items()} == {
        "customers": 2,
        "orders": 1,
        "events": 1,
        "survey_answers": 1,
        "contacts": 1,
    }
    again = api.post("/v1/imports", batch())
    assert again.status_code == 201
    assert all(v["inserted"] == 0 for v in again.json()["kinds"].values())
    timeline = api.get("/v1/customers/C1/timeline").json()["items"]
    assert {i["kind"] for i in timeline} == {"order", "survey"}


def test_one_bad_row_writes_nothing_and_every_bad_row_is_reported(api: Api) -> None:
    before = count(api.ctx, "orders"), count(api.ctx, "customers")
    body = batch()
    body["orders"] = [
        {**ORDER, "total_amount": 4800},
        {**ORDER, "order_id": "O2", "customer_id": "NOBODY", "total_amount": 1},
        {**ORDER, "order_id": "O3", "ordered_at": "yesterday", "total_amount": -5},
    ]
    r = api.post("/v1/imports", body)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    problems = r.json()["problems"]
    found = {(p["kind"], p["line"], p["column"]) for p in problems}
    assert found == {
        ("orders", 2, "customer_id"),
        ("orders", 3, "ordered_at"),
        ("orders", 3, "total_amount"),
    }
    assert "NOBODY" in r.json()["detail"] and "nothing imported" in r.json()["detail"]
    assert (count(api.ctx, "orders"), count(api.ctx, "customers")) == before


def test_a_file_upload_is_imported_and_its_bad_lines_named(api: Api) -> None:
    assert api.post("/v1/imports", {"customers": CUSTOMERS}).status_code == 201
    good = "order_id,customer_id,ordered_at,total_amount\nO5,C1,2026-11-01T00:00:00Z,100\n"
    r = api.client.post(
        "/v1/imports/orders/file",
        files={"file": ("orders.csv", good.encode())},
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["kinds"]["orders"]["inserted"] == 1
    bad = good + "O6,CX,2026-11-01T00:00:00Z,1\n"
    r = api.client.post(
        "/v1/imports/orders/file",
        files={"file": ("more.csv", bad.encode())},
        headers=api.headers(),
    )
    assert r.status_code == 422
    assert [(p["line"], p["column"]) for p in r.json()["problems"]] == [(3, "customer_id")]
    assert count(api.ctx, "orders") == 1


def test_ingestion_input_errors_and_scopes(api: Api) -> None:
    assert api.post("/v1/imports", {}).status_code == 422
    unknown = api.post("/v1/imports", {"shoes": [{"a": 1}]})
    assert unknown.status_code == 422 and "shoes" in unknown.json()["detail"]
    r = api.client.post(
        "/v1/imports/shoes/file", files={"file": ("x.csv", b"a\n1\n")}, headers=api.headers()
    )
    assert r.status_code == 422 and "customers" in r.json()["detail"]
    r = api.client.post(
        "/v1/imports/orders/file", files={"file": ("x.docx", b"a")}, headers=api.headers()
    )
    assert r.status_code == 422 and ".csv" in r.json()["detail"]
    assert api.post("/v1/imports", batch(), scope="analyst").status_code == 403
    assert api.post("/v1/imports", batch(), scope="pos").status_code == 403
