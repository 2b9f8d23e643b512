"""/v1/referrals: a member's code and link, capture of a code, the referral list.

Writes need no Idempotency-Key: a referee is referred once, so repeating a
capture returns the first referral (200) instead of a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, caller
from kizuna.errors import Forbidden
from kizuna.services import referrals
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["referrals"])


def allow_any(*permissions: str) -> Any:
    """Admit a key whose scope grants any of ``permissions`` (a shop's POS key or a marketer's)."""

    def check(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
        for permission in permissions:
            try:
                key.require(permission)
                return key
            except Forbidden:
                continue
        key.require(permissions[0])
        return key

    return Depends(check)


class CaptureIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=128, description="The new customer (referee).")
    code: str = Field(min_length=1, max_length=64, description="The referral code they came with.")
    order_id: str | None = Field(
        None, max_length=128, description="Their order that used the code, if any."
    )
    at: datetime | None = Field(None, description="When the code was used; default: now.")


@router.get(
    "/members/{member_id}/referral-code",
    dependencies=[allow("read")],
    summary="The member's referral code and link (created on first request)",
)
def referral_code(member_id: str, ctx: CtxDep) -> JSONResponse:
    return JSONResponse(referrals.code_for(UnitOfWork(ctx.engine, ctx.settings), member_id))


@router.post(
    "/referrals",
    status_code=201,
    dependencies=[allow_any("earn", "actions")],
    summary="Capture a referral code at sign-up or checkout",
)
def capture(body: CaptureIn, ctx: CtxDep) -> JSONResponse:
    cmd = referrals.Capture(body.member_id, body.code, body.at, body.order_id, "api")
    status, result = referrals.capture(UnitOfWork(ctx.engine, ctx.settings), cmd)
    return JSONResponse(result, status_code=status)


@router.get("/referrals", dependencies=[allow("read")], summary="Referrals, newest first")
def list_referrals(
    ctx: CtxDep,
    status: str | None = Query(None, description="pending, qualified, rewarded or rejected"),
    referrer: str | None = Query(None, max_length=128),
    limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    with ctx.engine.connect() as conn:
        rows = referrals.list_referrals(conn, status=status, referrer=referrer, limit=limit)
    return JSONResponse({"referrals": rows})


@router.get("/referrals/{referral_id}", dependencies=[allow("read")], summary="One referral")
def get_referral(referral_id: int, ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse(referrals.get_referral(conn, referral_id))
