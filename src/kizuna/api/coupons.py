"""/v1/coupons: create single- or multi-use coupons; is a code good for this order, and for how much."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, IdemDep, allow, run
from kizuna.services.programme import coupons
from kizuna.services.programme.idempotency import remember, replay
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["coupons"])
StrictInt = Annotated[int, Field(strict=True)]


class CouponsIn(BaseModel):
    kind: Literal["percent", "fixed", "free_item"] = "fixed"
    value: StrictInt = Field(description="Percent (1-100) or amount in minor units.")
    count: StrictInt = Field(1, ge=1, le=100_000, description="How many codes.")
    code: str | None = Field(
        None, max_length=64, description="Name the one code instead (a campaign code)."
    )
    max_uses: StrictInt = Field(1, ge=1, le=10**9, description="Uses of each code in total.")
    per_customer_limit: StrictInt | None = Field(
        None, ge=1, description="Uses one member may make of a code (multi-use codes)."
    )
    min_spend: StrictInt = Field(0, ge=0, le=10**11)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    item: str | None = Field(None, max_length=128)
    batch: str = Field("api", min_length=1, max_length=100)


@router.post(
    "/coupons",
    status_code=201,
    dependencies=[allow("coupons")],
    summary="Create coupons: unique random codes, or one named multi-use code",
)
def create(body: CouponsIn, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    def handler(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        stored = replay(uow, idem)
        if stored is not None:
            return stored.status, stored.body
        codes = coupons.generate(
            uow,
            count=body.count,
            kind=body.kind,
            value=body.value,
            batch=body.batch,
            min_spend=body.min_spend,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            item=body.item,
            max_uses=body.max_uses,
            per_customer_limit=body.per_customer_limit,
            code=body.code,
        )
        result: dict[str, object] = {
            "codes": codes,
            "max_uses": body.max_uses,
            "per_customer_limit": body.per_customer_limit,
        }
        remember(uow, idem, 201, result)
        uow.commit()
        return 201, result

    status, result = run(ctx, handler)
    return JSONResponse(result, status_code=status)


@router.get(
    "/coupons/{code}", dependencies=[allow("read")], summary="Validate a coupon for an order total"
)
def validate(
    code: str,
    ctx: CtxDep,
    order_total: int = Query(0, ge=0, le=10**11),
    member_id: str | None = Query(
        None, max_length=128, description="Also check this member's own use limit."
    ),
) -> JSONResponse:
    return JSONResponse(
        run(ctx, lambda uow: coupons.validate(uow, code, order_total, member=member_id))
    )
