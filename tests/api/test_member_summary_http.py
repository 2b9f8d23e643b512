"""``GET /v1/members/{id}`` answers exactly as documented, through the lean route that serves it.

The route is served by a handler that checks the key, the scope and the
query itself instead of through FastAPI's dependency resolution (the HTTP
stack was the member summary's ceiling, ``bench/web_bench.py``). These tests
pin every answer a till or a client generated from the OpenAPI document
relies on — found, unknown member, missing/unknown key, wrong scope, rate
limited, invalid ``expiring_days`` — to the bytes FastAPI's declared route
gave, and the published operation to its declaration.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.api.apiclient import Api

from kizuna.api import auth
from kizuna.services.programme import members
from kizuna.services.uow import UnitOfWork

PROBLEM = "application/problem+json"


def _get(api: Api, path: str, headers: dict[str, str] | None = None) -> Any:
    return api.client.get(path, headers=headers or {})


def _bearer(api: Api, scope: str = "pos") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[scope]}"}


def test_a_known_member_gets_the_services_summary_as_json(api: Api) -> None:
    r = _get(api, "/v1/members/M00001?expiring_days=60", _bearer(api))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"]
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        assert r.json() == members.summary(uow, "M00001", soon_days=60)
    default = _get(api, "/v1/members/M00001", _bearer(api)).json()
    with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
        assert default == members.summary(uow, "M00001", soon_days=30)


def test_an_unknown_member_is_a_404_problem(api: Api) -> None:
    r = _get(api, "/v1/members/NOPE", _bearer(api))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "https://kizuna.dev/problems/not-found"
    assert body["title"] == "not found" and body["status"] == 404
    assert "NOPE" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer kz_nothere_secret"}, {"Authorization": "Basic abc"}],
    ids=["missing", "unknown", "not-bearer"],
)
def test_a_missing_or_unknown_key_is_a_401_problem(api: Api, headers: dict[str, str]) -> None:
    r = _get(api, "/v1/members/M00001", headers)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["type"] == "https://kizuna.dev/problems/unauthorized"


def test_the_key_is_checked_before_the_query(api: Api) -> None:
    """FastAPI solves the route's dependencies (the key) before its parameters."""
    assert _get(api, "/v1/members/M00001?expiring_days=0").status_code == 401


def test_a_scope_without_member_summaries_is_a_403_problem(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(auth.PERMISSIONS, "analyst", frozenset({"read"}))
    r = _get(api, "/v1/members/M00001?expiring_days=0", _bearer(api, "analyst"))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json() == {
        "type": "https://kizuna.dev/problems/forbidden",
        "title": "forbidden",
        "status": 403,
        "detail": "this analyst key may not read member summaries; "
        "use a key with scope admin or marketer or pos",
    }


def test_a_key_over_its_rate_limit_is_a_429_problem_with_retry_after(api: Api) -> None:
    api.ctx.settings = dataclasses.replace(api.ctx.settings, api_rate_limits="pos=2")
    codes = [_get(api, "/v1/members/M00001", _bearer(api)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = _get(api, "/v1/members/M00001?expiring_days=0", _bearer(api))
    assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "https://kizuna.dev/problems/rate-limited"
    assert body["limit_per_minute"] == 2
    assert int(r.headers["retry-after"]) == body["retry_after"] >= 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "Input should be a valid integer, unable to parse string as an integer"),
        ("", "Input should be a valid integer, unable to parse string as an integer"),
        ("1.5", "Input should be a valid integer, unable to parse string as an integer"),
        ("0", "Input should be greater than or equal to 1"),
        ("367", "Input should be less than or equal to 366"),
    ],
)
def test_an_invalid_horizon_is_a_422_problem_naming_the_field(
    api: Api, value: str, problem: str
) -> None:
    r = _get(api, f"/v1/members/M00001?expiring_days={value}", _bearer(api))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json() == {
        "type": "https://kizuna.dev/problems/invalid-request",
        "title": "invalid request",
        "status": 422,
        "detail": f"fix these fields: query.expiring_days: {problem}",
        "errors": [{"field": "query.expiring_days", "problem": problem}],
    }


def test_the_last_of_repeated_horizons_counts(api: Api) -> None:
    r = _get(api, "/v1/members/M00001?expiring_days=0&expiring_days=5", _bearer(api))
    assert r.status_code == 200


def test_other_methods_are_refused_as_before(api: Api) -> None:
    for method in ("HEAD", "PUT", "DELETE"):
        r = api.client.request(method, "/v1/members/M00001", headers=_bearer(api))
        assert r.status_code == 405, method
        if method != "HEAD":
            assert r.headers["content-type"] == PROBLEM


def test_the_published_operation_is_the_declared_one(api: Api) -> None:
    op = api.client.get("/openapi.json").json()["paths"]["/v1/members/{member_id}"]["get"]
    assert op["security"] == [{"ApiKey": []}]
    assert op["tags"] == ["members"]
    assert op["summary"] == "Available, pending, expiring soon, tier and progress"
    params = {p["name"]: p for p in op["parameters"]}
    assert params["member_id"]["in"] == "path" and params["member_id"]["required"]
    horizon = params["expiring_days"]
    assert horizon["in"] == "query" and not horizon.get("required", False)
    assert horizon["schema"] == {
        "type": "integer",
        "maximum": 366,
        "minimum": 1,
        "default": 30,
        "title": "Expiring Days",
    }
    assert set(op["responses"]) == {"200", "401", "403", "404", "422", "429"}
    for status in ("401", "403", "404", "422", "429"):
        assert list(op["responses"][status]["content"]) == [PROBLEM]


def test_the_request_is_measured_under_its_route_template(api: Api) -> None:
    def count() -> float:
        body = _get(api, "/metrics", _bearer(api, "admin")).text
        sample = (
            'kizuna_http_request_duration_seconds_count{method="GET",'
            'route="/v1/members/{member_id}",status="200"} '
        )
        line = next((x for x in body.splitlines() if x.startswith(sample)), sample + "0")
        return float(line.rsplit(" ", 1)[1])

    before = count()
    assert _get(api, "/v1/members/M00002", _bearer(api)).status_code == 200
    assert count() == before + 1


def test_the_lean_handler_is_the_one_that_answers() -> None:
    """The lean handler must come first among the routes of this path and method."""
    from fastapi.routing import APIRoute

    from kizuna.api import members as members_api

    first = next(
        r
        for r in members_api.router.routes
        if isinstance(r, APIRoute) and r.path == "/members/{member_id}" and "GET" in r.methods
    )
    assert first.endpoint is members_api.served_summary and not first.include_in_schema


def test_writers_after_summaries_still_get_a_transaction(api: Api) -> None:
    """On PostgreSQL the summary reads in autocommit; the pooled connection it used
    must come back to writers transactional (a unit of work left uncommitted
    writes nothing)."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from kizuna.store import tables as t

    for _ in range(3):
        assert _get(api, "/v1/members/M00003", _bearer(api)).status_code == 200
    for _ in range(3):  # every pooled connection the summaries may have used
        with UnitOfWork(api.ctx.engine, api.ctx.settings) as uow:
            uow.conn.execute(
                sa.insert(t.customers).values(
                    external_id="GHOST", name="g", signup_at=datetime(2025, 1, 1, tzinfo=UTC)
                )
            )
    with api.ctx.engine.connect() as conn:
        ghosts = conn.execute(
            sa.select(sa.func.count()).where(t.customers.c.external_id == "GHOST")
        ).scalar_one()
    assert ghosts == 0
