"""``POST /v1/orders`` answers exactly as its documented route does, whatever the request.

The till's earn call is served by a lean handler (``orders.served_record_order``)
that checks the key, the scope, the Idempotency-Key and the body itself instead
of through FastAPI's dependency resolution (``bench/ledger_bench.py``, round 5).
Each case below is sent to two apps on the same workspace: the app as served,
and an app whose orders router holds only the documented route (what FastAPI
answered before the lean handler existed). Status, the headers a client relies
on and the exact body must be the same. This file passed against the
documented route before the lean handler was written.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.api.apiclient import Api, add_members

from kizuna.api import create_app
from kizuna.api import orders as orders_api

PROBLEM = "application/problem+json"
JSON = "application/json"
HEADERS = ("content-type", "www-authenticate", "retry-after")


def _lean_endpoint() -> Any:
    return getattr(orders_api, "served_record_order", None)


@pytest.fixture
def documented(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """An app on the same workspace answered by the documented route alone."""
    lean = _lean_endpoint()
    router = APIRouter(tags=["orders"])
    router.routes.extend(
        r for r in orders_api.router.routes if getattr(r, "endpoint", None) is not lean
    )
    with monkeypatch.context() as m:
        m.setattr(orders_api, "router", router)
        app = create_app(api.ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _order(order_id: str = "O1", member: str = "M00001", **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "member_id": member, "lines": [{"amount": 1980}], **extra}


def _send(
    client: TestClient,
    api: Api,
    *,
    body: bytes,
    scope: str | None = "pos",
    authorization: str | None = None,
    idem: str | None = "fresh",
    content_type: str | None = JSON,
) -> tuple[int, dict[str, str], Any]:
    headers: dict[str, str] = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif scope is not None:
        headers["Authorization"] = f"Bearer {api.keys[scope]}"
    if idem == "fresh":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    elif idem is not None:
        headers["Idempotency-Key"] = idem
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = client.post("/v1/orders", content=body, headers=headers)
    kept = {h: r.headers[h] for h in HEADERS if h in r.headers}
    try:
        payload: Any = r.json()
    except ValueError:
        payload = r.text
    return r.status_code, kept, payload


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


#: Requests that change nothing: the same bytes go to both apps.
REFUSED: dict[str, dict[str, Any]] = {
    "no key": {"body": _j(_order()), "scope": None},
    "unknown key": {"body": _j(_order()), "authorization": "Bearer kz_nothere_secret"},
    "not a bearer key": {"body": _j(_order()), "authorization": "Basic abc"},
    "wrong scope": {"body": _j(_order()), "scope": "analyst"},
    "no Idempotency-Key": {"body": _j(_order()), "idem": None},
    "blank Idempotency-Key": {"body": _j(_order()), "idem": "   "},
    "too long Idempotency-Key": {"body": _j(_order()), "idem": "k" * 256},
    "malformed JSON": {"body": b'{"order_id": "O1", '},
    "malformed JSON, no key": {"body": b'{"order_id": ', "scope": None},
    "malformed JSON, no Idempotency-Key": {"body": b"{", "idem": None},
    "trailing garbage": {"body": _j(_order()) + b" x"},
    "not UTF-8": {"body": b'{"order_id": "\xff"}'},
    "empty body": {"body": b""},
    "empty body, no key": {"body": b"", "scope": None},
    "empty body, no Idempotency-Key": {"body": b"", "idem": None},
    "null": {"body": b"null"},
    "a list": {"body": b"[]"},
    "a string": {"body": b'"order"'},
    "an empty object": {"body": b"{}"},
    "no content type": {"body": _j(_order()), "content_type": None},
    "text/plain": {"body": _j(_order()), "content_type": "text/plain"},
    "amount as text": {"body": _j(_order(lines=[{"amount": "1980"}]))},
    "amount as float": {"body": _j(_order(lines=[{"amount": 19.8}]))},
    "amount NaN": {
        "body": b'{"order_id": "O1", "member_id": "M00001", "lines": [{"amount": NaN}]}'
    },
    "quantity as bool": {"body": _j(_order(lines=[{"amount": 1, "quantity": True}]))},
    "lines not a list": {"body": _j(_order(lines={"amount": 1}))},
    "no lines": {"body": _j(_order(lines=[]))},
    "order id a number": {"body": _j(_order(order_id=5))},  # type: ignore[arg-type]
    "order id empty": {"body": _j(_order(order_id=""))},
    "order id too long": {"body": _j(_order(order_id="x" * 129))},
    "member missing": {"body": _j({"order_id": "O1", "lines": [{"amount": 1}]})},
    "many faults at once": {"body": _j({"order_id": 1, "lines": [{"amount": "x"}, {}]})},
    "bad timestamp": {"body": _j(_order(ordered_at="yesterday"))},
    "currency too long": {"body": _j(_order(currency="YENS"))},
    "wrong currency": {"body": _j(_order(currency="USD"))},
    "negative amount": {"body": _j(_order(lines=[{"amount": -100}]))},
    "too many lines": {"body": _j(_order(lines=[{"amount": 1}] * 1001))},
    "line numbered twice": {
        "body": _j(_order(lines=[{"line_no": 1, "amount": 1}, {"line_no": 1, "amount": 2}]))
    },
    "unknown member": {"body": _j(_order(member="NOPE"))},
    "amount past 64 bits": {"body": _j(_order(lines=[{"amount": 10**30}]))},
    "lone surrogate": {"body": b'{"order_id": "\\ud800", "member_id": "M00001", "lines": []}'},
    "duplicate keys, the last invalid": {
        "body": b'{"order_id": "O1", "order_id": 5, "member_id": "M00001", "lines": [{"amount": 1}]}'
    },
    "UTF-16": {"body": _j(_order(member="NOPE")).decode().encode("utf-16")},
    "key checked before the body": {"body": _j({"order_id": 1}), "scope": None},
    "scope checked before the body": {"body": _j({"order_id": 1}), "scope": "analyst"},
    "Idempotency-Key checked before the body": {"body": _j({"order_id": 1}), "idem": None},
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_request_gets_the_documented_answer(
    api: Api, documented: TestClient, case: str
) -> None:
    kwargs = REFUSED[case]
    served = _send(api.client, api, **kwargs)
    published = _send(documented, api, **kwargs)
    assert served == published
    assert served[0] >= 400, served
    if served[0] != 400 or case != "not UTF-8":
        assert served[1]["content-type"] == PROBLEM


def test_a_key_over_its_rate_limit_gets_the_documented_429(
    api: Api, documented: TestClient
) -> None:
    api.ctx.settings = dataclasses.replace(api.ctx.settings, api_rate_limits="pos=1")
    body = _j(_order(order_id="RL1", member="M00003"))
    assert _send(api.client, api, body=body)[0] == 201
    served = _send(api.client, api, body=_j({"order_id": 1}))
    published = _send(documented, api, body=_j({"order_id": 1}))
    assert served[0] == published[0] == 429
    assert served[1]["content-type"] == published[1]["content-type"] == PROBLEM
    # The retry delay counts down between the two calls; everything else is equal.
    assert abs(int(served[1]["retry-after"]) - int(published[1]["retry-after"])) <= 1
    strip = ("retry_after",)
    assert {k: v for k, v in served[2].items() if k not in strip} == {
        k: v for k, v in published[2].items() if k not in strip
    }


def _normalised(answer: tuple[int, dict[str, str], Any], *ids: str) -> str:
    text = re.sub(
        r"\d{4}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d", "<time>", json.dumps(answer, sort_keys=True)
    )
    for i, x in enumerate(ids):
        text = text.replace(x, f"<id{i}>")
    return text


#: Requests that earn: each app records its own order for its own new member.
EARNING: dict[str, dict[str, Any]] = {
    "a good order": {},
    "extra fields are ignored": {"extra": {"note": "hello", "lines_total": 3}},
    "every field": {
        "extra": {
            "ordered_at": "2026-11-20T10:00:00+09:00",
            "currency": "JPY",
            "channel": "store",
            "store": "Shibuya",
            "lines": [
                {"line_no": 3, "amount": 1200, "quantity": 2, "product_id": "P1"},
                {"amount": 500, "category_id": "food"},
            ],
        }
    },
    "a +json content type": {"content_type": "application/vnd.kizuna+json"},
    "a charset": {"content_type": "application/json; charset=utf-8"},
    "duplicate keys, the last valid": {"extra": {"channel": 5}, "raw_tail": ', "channel": "web"'},
}


@pytest.mark.parametrize("case", list(EARNING))
def test_an_order_earns_the_same_answer_as_documented(
    api: Api, documented: TestClient, case: str
) -> None:
    spec = EARNING[case]
    slug = uuid.uuid4().hex[:8]
    members = add_members(api.ctx, 2, prefix=f"E{slug}")
    answers = []
    for client, member, order_id in (
        (api.client, members[0], f"S-{slug}"),
        (documented, members[1], f"D-{slug}"),
    ):
        body = _j(_order(order_id=order_id, member=member, **spec.get("extra", {})))
        if "raw_tail" in spec:
            body = body[:-1] + spec["raw_tail"].encode() + b"}"
        answer = _send(client, api, body=body, content_type=spec.get("content_type", JSON))
        assert answer[0] == 201, answer
        assert answer[1]["content-type"] == JSON
        answers.append(_normalised(answer, order_id, member))
    assert answers[0] == answers[1]


def test_a_replayed_key_returns_the_first_answer_and_earns_once(
    api: Api, documented: TestClient
) -> None:
    body = _j(_order(order_id="RP1", member="M00004"))
    first = _send(api.client, api, body=body, idem="replay-1")
    again = _send(api.client, api, body=body, idem="replay-1")
    published = _send(documented, api, body=body, idem="replay-1")
    assert first[0] == 201 and first == again == published
    balance = api.get("/v1/members/M00004").json()["balance"]["available"]  # type: ignore[attr-defined]
    assert balance == first[2]["balance"]["available"]
    other = _j(_order(order_id="RP2", member="M00004"))
    served = _send(api.client, api, body=other, idem="replay-1")
    assert served[0] == 409
    assert served == _send(documented, api, body=other, idem="replay-1")


def test_the_lean_handler_answers_and_the_documented_route_is_published(api: Api) -> None:
    routes = [
        r
        for r in orders_api.router.routes
        if isinstance(r, APIRoute) and r.path == "/orders" and "POST" in (r.methods or ())
    ]
    assert [r.endpoint for r in routes] == [orders_api.served_record_order, orders_api.record_order]
    assert not routes[0].include_in_schema and routes[1].include_in_schema
    op = api.client.get("/openapi.json").json()["paths"]["/v1/orders"]["post"]
    assert op["summary"] == "Record an order and earn its points"
    assert op["security"] == [{"ApiKey": []}]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderIn"
    }
    assert {p["name"] for p in op["parameters"]} == {"idempotency-key"}
