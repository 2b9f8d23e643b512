"""The back-office batch endpoint: all or nothing, idempotent, and refundable like single orders."""

from __future__ import annotations

import sqlalchemy as sa
from tests.api.apiclient import Api

from kizuna.services.programme.checks import check_all
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt


def batch(n: int, start: int = 0) -> dict[str, object]:
    return {
        "orders": [
            {
                "order_id": f"B{i}",
                "member_id": f"M0000{i % 5}",
                "lines": [{"amount": 1000}, {"amount": 2550}],
            }
            for i in range(start, start + n)
        ]
    }


def test_batch_earns_like_single_orders_and_a_retry_changes_nothing(api: Api) -> None:
    r = api.post("/v1/orders:batch", batch(50), key="batch-1")
    assert r.status_code == 201, r.text
    assert r.json()["points"] == 50 * 35 and r.json()["lines"] == 100
    again = api.post("/v1/orders:batch", batch(50), key="batch-1")
    assert again.json() == r.json()
    assert api.get("/v1/members/M00000").json()["balance"]["available"] == 10 * 35
    refund = api.post(
        "/v1/orders/B5/refunds", {"refund_id": "F", "lines": [{"line_no": 2, "amount": 2550}]}
    )
    assert refund.json()["reversed_points"] == 25
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        assert check_all(uow) == []


def test_one_bad_order_refuses_the_whole_batch(api: Api) -> None:
    body = batch(3)
    body["orders"][1]["lines"] = [{"amount": -1}]  # type: ignore[index]
    body["orders"][2]["member_id"] = "M00001"  # type: ignore[index]
    r = api.post("/v1/orders:batch", body)
    assert (
        r.status_code == 422
        and "order B1" in r.json()["detail"]
        and "negative" in r.json()["detail"]
    )
    with api.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.ledger_entries)).scalar() == 0
    assert (
        api.post(
            "/v1/orders", {"order_id": "B9", "member_id": "M00004", "lines": [{"amount": 100}]}
        ).status_code
        == 201
    )
    r = api.post("/v1/orders:batch", batch(1, start=9))
    assert r.status_code == 422 and "already earned" in r.json()["detail"]
    assert api.post("/v1/orders:batch", batch(2), scope="pos").status_code == 403
