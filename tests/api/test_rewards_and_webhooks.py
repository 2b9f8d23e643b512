"""Rewards catalogue redemption over HTTP; signed webhook delivery to a real local receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from tests.api.apiclient import Api

from kizuna.services.programme import webhooks
from kizuna.services.uow import UnitOfWork

SECRET = "s3cret"


def test_reward_stock_limit_and_balance_are_checked_together(api: Api) -> None:
    for m, order in (("M00000", "O1"), ("M00001", "O2")):
        api.post("/v1/orders", {"order_id": order, "member_id": m, "lines": [{"amount": 100000}]})
    r = api.post(
        "/v1/rewards",
        {
            "reward_id": "TOTE",
            "name": "Tote bag",
            "points_cost": 300,
            "stock": 1,
            "per_member_limit": 1,
        },
        scope="marketer",
    )
    assert r.status_code == 201 and r.json()["stock"] == 1
    ok = api.post("/v1/members/M00000/rewards/TOTE", {"redemption_id": "RW1"}, scope="pos")
    assert ok.status_code == 201 and ok.json()["balance"]["available"] == 700
    again = api.post("/v1/members/M00000/rewards/TOTE", {"redemption_id": "RW2"})
    assert again.status_code == 422 and "1 per member" in again.json()["detail"]
    out = api.post("/v1/members/M00001/rewards/TOTE", {"redemption_id": "RW3"})
    assert out.status_code == 422 and "out of stock" in out.json()["detail"]
    assert api.get("/v1/members/M00001").json()["balance"]["available"] == 1000  # nothing spent
    assert api.get("/v1/rewards").json()["items"][0]["stock"] == 0
    missing = api.post("/v1/members/M00001/rewards/NOPE", {"redemption_id": "RW4"})
    assert missing.status_code == 404


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, object], bool]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = webhooks.verify(SECRET, self.headers["Kizuna-Signature"], body)
        self.received.append((json.loads(body), ok))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_events_are_delivered_once_with_a_valid_signature(api: Api, receiver: str) -> None:
    api.post(
        "/v1/orders", {"order_id": "BIG", "member_id": "M00002", "lines": [{"amount": 200000}]}
    )  # -> silver
    api.post("/v1/rewards", {"reward_id": "CUP", "name": "Cup", "points_cost": 100})
    api.post("/v1/members/M00002/rewards/CUP", {"redemption_id": "RC"})
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        soon = datetime.now(UTC) + timedelta(days=366)
        assert webhooks.queue_expiring_soon(uow, soon - timedelta(days=20), days=30) == 1
        assert (
            webhooks.queue_expiring_soon(uow, soon - timedelta(days=19), days=30) == 0
        )  # once per window
        assert webhooks.deliver(uow, receiver, SECRET) == 3
        assert webhooks.deliver(uow, receiver, SECRET) == 0
    topics = [body["topic"] for body, _ in _Receiver.received]
    assert topics == ["tier.changed", "reward.redeemed", "points.expiring"]
    assert all(ok for _, ok in _Receiver.received)
    assert not webhooks.verify("wrong", webhooks.sign(SECRET, 1, b"{}"), b"{}", now=1)
