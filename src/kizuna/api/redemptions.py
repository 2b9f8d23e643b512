"""/v1/redemptions/{id}/confirm|cancel: finish or undo a checkout hold."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, IdemDep, allow, run
from kizuna.services.programme import redemptions

router = APIRouter(tags=["redemptions"])


@router.post(
    "/redemptions/{redemption_id}/confirm",
    dependencies=[allow("redeem")],
    summary="Confirm a reserved redemption",
)
def confirm(redemption_id: str, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    cmd = redemptions.Settle(redemption_id, "confirm", idem)
    status, result = run(ctx, lambda uow: redemptions.settle(uow, cmd))
    return JSONResponse(result, status_code=status)


@router.post(
    "/redemptions/{redemption_id}/cancel",
    dependencies=[allow("redeem")],
    summary="Cancel a redemption; its points return to their lots",
)
def cancel(redemption_id: str, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    cmd = redemptions.Settle(redemption_id, "cancel", idem)
    status, result = run(ctx, lambda uow: redemptions.settle(uow, cmd))
    return JSONResponse(result, status_code=status)
