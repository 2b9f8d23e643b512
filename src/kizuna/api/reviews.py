"""/v1/reviews: ingest reviews and UGC, the moderation queue, approve or reject."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, allow
from kizuna.api.referrals import allow_any
from kizuna.services import reviews
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["reviews"])


class ReviewIn(BaseModel):
    review_id: str = Field(min_length=1, max_length=128, description="Your id of the review.")
    member_id: str = Field(min_length=1, max_length=128)
    kind: Literal["review", "ugc"] = "review"
    rating: int | None = Field(None, ge=1, le=5)
    title: str | None = Field(None, max_length=300)
    text: str | None = Field(None, max_length=20_000)
    channel: str | None = Field(None, max_length=50, description="Where it was posted.")
    url: str | None = Field(None, max_length=2000)
    language: str | None = Field(None, max_length=8)
    product_id: str | None = Field(None, max_length=128)
    posted_at: datetime | None = None


class DecisionIn(BaseModel):
    status: Literal["approved", "rejected"]
    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(None, max_length=500, description="Required to reject.")


@router.post(
    "/reviews",
    status_code=201,
    dependencies=[allow_any("earn", "actions")],
    summary="Ingest a review or UGC post (pending moderation)",
)
def submit(body: ReviewIn, ctx: CtxDep) -> JSONResponse:
    cmd = reviews.NewReview(
        body.review_id, body.member_id, body.rating, body.text, body.title, body.kind,
        body.channel, body.url, body.language, body.product_id, body.posted_at,
    )  # fmt: skip
    status, result = reviews.submit(UnitOfWork(ctx.engine, ctx.settings), cmd)
    result.pop("name", None)
    return JSONResponse(result, status_code=status)


@router.get("/reviews", dependencies=[allow("read")], summary="Reviews by moderation status")
def queue(
    ctx: CtxDep,
    status: Literal["pending", "approved", "rejected", "all"] = "pending",
    limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    with ctx.engine.connect() as conn:
        rows = reviews.queue(conn, None if status == "all" else status, limit)
    for row in rows:
        row.pop("name", None)  # the member id identifies the author; names stay in the dashboard
    return JSONResponse({"reviews": rows})


@router.get("/reviews/{review_id}", dependencies=[allow("read")], summary="One review")
def show(review_id: str, ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        row = reviews.review(conn, review_id)
    row.pop("name", None)
    return JSONResponse(row)


@router.post(
    "/reviews/{review_id}/moderation",
    dependencies=[allow("actions")],
    summary="Approve (pays the reward rule once) or reject with a reason",
)
def moderate(review_id: str, body: DecisionIn, ctx: CtxDep) -> JSONResponse:
    cmd = reviews.Moderate(review_id, body.status, body.actor, body.reason)
    row = reviews.moderate(UnitOfWork(ctx.engine, ctx.settings), cmd)
    row.pop("name", None)
    return JSONResponse(row)
