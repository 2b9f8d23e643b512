"""Multi-use coupons with per-member limits, refunds into ``returns``, webhook retries.

Over HTTP through the ASGI app, on SQLite and PostgreSQL; webhooks go to a
real local receiver that fails before it recovers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from tests.api.apiclient import Api

from kizuna.services.programme import webhooks
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

SECRET = "retry-secret"


def order(api: Api, order_id: str, member: str, amount: int, coupon: str | None = None) -> Any:
    body: dict[str, Any] = {
        "order_id": order_id,
        "member_id": member,
        "lines": [{"amount": amount}],
    }
    if coupon:
        body["coupon_code"] = coupon
    return api.post("/v1/orders", body, scope="pos")


def test_a_multi_use_code_limits_each_member_and_the_total(api: Api) -> None:
    made = api.post(
        "/v1/coupons",
        {
            "kind": "fixed",
            "value": 300,
            "code": "spring-10",
            "max_uses": 3,
            "per_customer_limit": 2,
        },
        scope="marketer",
    )
    assert made.status_code == 201, made.text
    assert made.json()["codes"] == ["SPR1NG-10"]  # typed I reads as 1, like every code
    assert order(api, "C1", "M00000", 5000, "SPRING-10").json()["coupon_discount"] == 300
    assert order(api, "C2", "M00000", 5000, "spr1ng-10").status_code == 201
    check = api.get("/v1/coupons/SPRING-10", order_total=5000, member_id="M00000")
    assert check.status_code == 422 and "2 times per member" in check.json()["detail"]
    third = order(api, "C3", "M00000", 5000, "SPRING-10")
    assert third.status_code == 422 and "per member" in third.json()["detail"]
    ok = api.get("/v1/coupons/SPRING-10", order_total=5000, member_id="M00001").json()
    assert ok["uses_left"] == 1 and ok["member_uses_left"] == 2
    assert order(api, "C4", "M00001", 5000, "SPRING-10").status_code == 201
    used_up = order(api, "C5", "M00002", 5000, "SPRING-10")
    assert used_up.status_code == 422 and "already been used" in used_up.json()["detail"]
    # The refused orders earned nothing and used nothing.
    with api.ctx.engine.connect() as conn:
        uses = conn.execute(sa.select(pt.coupons.c.uses)).scalar_one()
        per_member = conn.execute(sa.select(sa.func.count()).select_from(pt.coupon_uses)).scalar()
        refused = conn.execute(
            sa.select(sa.func.count()).where(t.orders.c.external_id.in_(("C3", "C5")))
        ).scalar()
    assert (uses, per_member, refused) == (3, 3, 0)
    dup = api.post("/v1/coupons", {"kind": "fixed", "value": 1, "code": "SPRING-10"})
    assert dup.status_code == 409
    bad = api.post("/v1/coupons", {"kind": "fixed", "value": 1, "per_customer_limit": 2})
    assert bad.status_code == 422 and "per_customer_limit" in bad.json()["detail"]


def test_a_refund_through_the_api_lands_in_returns_once(api: Api) -> None:
    body = {
        "order_id": "R1",
        "member_id": "M00003",
        "lines": [{"amount": 3000, "quantity": 3}, {"amount": 1000}],
    }
    assert api.post("/v1/orders", body, scope="pos").status_code == 201
    refund = {"refund_id": "F1", "lines": [{"line_no": 1, "amount": 2000}], "reason": "too big"}
    first = api.post("/v1/orders/R1/refunds", refund, scope="pos", key="f1")
    assert first.status_code == 201
    again = api.post("/v1/orders/R1/refunds", refund, scope="pos", key="f1")
    assert again.json() == first.json()
    rest = api.post("/v1/orders/R1/refunds", {"refund_id": "F2"}, scope="pos")  # all that is left
    assert rest.status_code == 201
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.returns.c.external_id,
                t.returns.c.line_no,
                t.returns.c.quantity,
                t.returns.c.refund_amount,
                t.returns.c.reason,
            ).order_by(t.returns.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("F1:1", 1, 2, 2000, "too big"),
        ("F2:1", 1, 1, 1000, "refund"),
        ("F2:2", 2, 1, 1000, "refund"),
    ]


class _Flaky(BaseHTTPRequestHandler):
    """Refuses the first ``fail`` deliveries with 503, then accepts."""

    fail = 0
    received: list[tuple[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not webhooks.verify(SECRET, self.headers["Kizuna-Signature"], body):
            self.send_response(401)
        elif _Flaky.fail > 0:
            _Flaky.fail -= 1
            self.send_response(503)
        else:
            self.received.append(
                (self.headers["Kizuna-Event"], self.headers["Kizuna-Delivery-Attempt"])
            )
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.received, _Flaky.fail = [], 2
    server = HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_failed_webhooks_are_retried_with_backoff_in_order(api: Api, flaky: str) -> None:
    order(api, "W1", "M00004", 200000)  # -> tier.changed
    api.post("/v1/rewards", {"reward_id": "MUG", "name": "Mug", "points_cost": 100})
    api.post("/v1/members/M00004/rewards/MUG", {"redemption_id": "RM"})  # -> reward.redeemed
    now = datetime.now(UTC)

    def deliver(at: datetime) -> int:
        with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
            return webhooks.deliver(uow, flaky, SECRET, now=at)

    assert deliver(now) == 0  # 503: attempt 1, next in 1 minute
    assert deliver(now + timedelta(seconds=30)) == 0  # still backing off: nothing sent
    assert deliver(now + timedelta(minutes=1)) == 0  # 503 again: next in 2 minutes
    with api.ctx.engine.connect() as conn:
        first = conn.execute(
            sa.select(pt.programme_events).order_by(pt.programme_events.c.id)
        ).first()
    assert first is not None and first.attempts == 2 and "503" in first.last_error
    assert deliver(now + timedelta(minutes=3, seconds=1)) == 2
    assert _Flaky.received == [("tier.changed", "3"), ("reward.redeemed", "1")]
    assert deliver(now + timedelta(hours=1)) == 0


def test_a_receiver_down_for_good_sets_the_event_aside_and_it_can_be_retried(
    api: Api, flaky: str
) -> None:
    order(api, "W2", "M00004", 200000)
    _Flaky.fail = 10**6
    at = datetime.now(UTC)
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        for _ in range(webhooks.MAX_ATTEMPTS):
            webhooks.deliver(uow, flaky, SECRET, now=at)
            at += webhooks.MAX_BACKOFF
        row = uow.conn.execute(sa.select(pt.programme_events)).one()
        assert row.failed_at is not None and row.attempts == webhooks.MAX_ATTEMPTS
        assert webhooks.deliver(uow, flaky, SECRET, now=at) == 0  # set aside: not attempted
    _Flaky.fail = 0
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        assert webhooks.retry_failed(uow) == 1
        assert webhooks.deliver(uow, flaky, SECRET, now=at) == 1
    # Unreachable receivers are a failure too, never a crash.
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        uow.conn.execute(sa.update(pt.programme_events).values(delivered_at=None))
        uow.commit()
        assert webhooks.deliver(uow, "http://127.0.0.1:9/none", SECRET, now=at) == 0
        assert uow.conn.execute(sa.select(pt.programme_events.c.last_error)).scalar()
