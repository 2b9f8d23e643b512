"""/v1/accounts/{id}/health and /v1/intent/surging: customer success and B2B intent.

Both read what ``kizuna health compute`` and ``kizuna intent compute`` stored
(run them daily from a scheduler), so the API, the CLI and the dashboard
show the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow, finite
from kizuna.services import health, intent
from kizuna.services.customers import jsonable

router = APIRouter(tags=["customer success"])
AccountId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The account's id, such as A0001.",
    ),
]


def _json(doc: Any) -> JSONResponse:
    return JSONResponse(finite(jsonable(doc)))


@router.get(
    "/accounts/health",
    dependencies=[allow("read")],
    summary="Every account's latest health, band, touch model and trend",
)
def accounts_health(
    ctx: CtxDep,
    band: Annotated[str | None, Query(pattern="^(healthy|watch|at_risk)$")] = None,
    touch_model: Annotated[
        str | None, Query(pattern="^(high_touch|low_touch|tech_touch|community_touch)$")
    ] = None,
) -> JSONResponse:
    rows = health.account_list(ctx)
    rows = [r for r in rows if band is None or r["band"] == band]
    rows = [r for r in rows if touch_model is None or r["touch_model"] == touch_model]
    return _json({"accounts": rows})


@router.get(
    "/accounts/{account_id}/health",
    dependencies=[allow("read")],
    summary="One account's health: score, band, touch model, components and trend",
)
def account_health(account_id: AccountId, ctx: CtxDep) -> JSONResponse:
    return _json(health.account_health(ctx, account_id))


@router.get(
    "/intent/surging",
    dependencies=[allow("read")],
    summary="Accounts researching a topic right now (the latest computed week)",
)
def intent_surging(
    ctx: CtxDep,
    topic: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    return _json({"topic": topic, "accounts": intent.surging(ctx, topic, limit=limit)})


@router.get(
    "/intent/topics",
    dependencies=[allow("read")],
    summary="Per topic: accounts reading it and accounts surging on it this week",
)
def intent_topics(ctx: CtxDep) -> JSONResponse:
    return _json({"topics": intent.topic_summary(ctx)})
