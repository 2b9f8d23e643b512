"""/v1/coupons/{code}: is this coupon good for this order, and for how much."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow, run
from kizuna.services.programme import coupons

router = APIRouter(tags=["coupons"])


@router.get(
    "/coupons/{code}", dependencies=[allow("read")], summary="Validate a coupon for an order total"
)
def validate(code: str, ctx: CtxDep, order_total: int = Query(0, ge=0, le=10**11)) -> JSONResponse:
    return JSONResponse(run(ctx, lambda uow: coupons.validate(uow, code, order_total)))
