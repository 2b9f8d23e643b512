"""The back-office batch endpoint: all or nothing, idempotent, and refundable like single orders."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from tests.api.apiclient import Api

from kizuna.domain.programme import parse_programme
from kizuna.services.programme import config
from kizuna.services.programme.checks import check_all
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t


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


def test_a_batch_lifting_members_into_a_tier_writes_what_single_orders_write(api: Api) -> None:
    """Tier, review date, pending balance and next due instant on the account, the
    webhook outbox row and the journey event, per member; a retry adds none."""
    config.forget_cache()
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        config.apply_programme(
            uow,
            parse_programme(
                {
                    "earning": {"pending_days": 2},
                    "tiers": {"basis": "points", "levels": [{"name": "silver", "threshold": 60}]},
                }
            ),
            "test",
        )
        uow.commit()
    config.forget_cache()
    # 10 orders of 35 points over 5 members: 70 each, all lifted to silver.
    r = api.post("/v1/orders:batch", batch(10), key="tiers-1")
    assert r.status_code == 201, r.text
    assert r.json()["tier_changes"] == 5
    assert api.post("/v1/orders:batch", batch(10), key="tiers-1").json() == r.json()
    a, e, pe = pt.point_accounts.c, t.events.c, pt.programme_events.c
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.tier, a.pending, a.available, a.tier_review_at, a.next_due_at)
        ).all()
        assert len(rows) == 5
        for row in rows:
            assert (row.tier, row.pending, row.available) == ("silver", 70, 0)
            assert row.tier_review_at is not None and row.next_due_at is not None
            assert row.next_due_at < datetime(9999, 1, 1, tzinfo=UTC)  # the release is due
        events = conn.execute(sa.select(e.type, e.properties).where(e.type == "tier_changed")).all()
        assert len(events) == 5
        assert all(x.properties["new_tier"] == "silver" for x in events)
        outbox = conn.execute(sa.select(pe.topic, pe.payload)).all()
        assert [x.topic for x in outbox] == ["tier.changed"] * 5
        assert {x.payload["to"] for x in outbox} == {"silver"}
    summary = api.get("/v1/members/M00000").json()
    assert summary["tier"] == "silver" and summary["balance"]["pending"] == 70
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        assert check_all(uow) == []
