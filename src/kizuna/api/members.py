"""/v1/members: summary, explained ledger, redemptions, adjustments and action rewards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, IdemDep, allow, read, run
from kizuna.services.programme import actions, members, redemptions

router = APIRouter(tags=["members"])
StrictInt = Annotated[int, Field(strict=True)]


class RedeemIn(BaseModel):
    redemption_id: str = Field(
        min_length=1, max_length=128, description="Your id for this redemption."
    )
    points: StrictInt
    hold: bool = Field(False, description="Reserve at checkout; confirm or cancel later.")
    order_id: str | None = Field(None, max_length=128)


class AdjustIn(BaseModel):
    points: StrictInt = Field(description="Positive to credit, negative to debit.")
    reason: str = Field(min_length=1, max_length=400)


class ActionIn(BaseModel):
    action: str = Field(
        min_length=1,
        max_length=64,
        description="signup, review, referral, survey, event_attended, custom:<name>, ...",
    )
    reference: str = Field(
        min_length=1,
        max_length=128,
        description="The review/referral/event id: each is rewarded once.",
    )


@router.get(
    "/members/{member_id}",
    dependencies=[allow("member")],
    summary="Available, pending, expiring soon, tier and progress",
    description="Readable by every scope, `pos` included: a till shows the balance and "
    "tier before earning or redeeming. The ledger stays with the reading scopes.",
)
async def summary(
    member_id: str, ctx: CtxDep, expiring_days: int = Query(30, ge=1, le=366)
) -> JSONResponse:
    # A read: it takes no place in the SQLite writers' queue (nothing is committed).
    # One indexed statement (see ``members.summary``): on SQLite, an in-process
    # library call of a fraction of a millisecond, it runs on the event loop,
    # which costs less than the hop to a worker thread; on PostgreSQL the
    # round trip waits on the network, so it goes to a thread and the loop
    # serves other requests meanwhile.
    def answer() -> dict[str, Any]:
        return read(ctx, lambda uow: members.summary(uow, member_id, soon_days=expiring_days))

    if ctx.settings.is_sqlite:
        return JSONResponse(answer())
    return JSONResponse(await run_in_threadpool(answer))


@router.get(
    "/members/{member_id}/ledger",
    dependencies=[allow("read")],
    summary="Ledger entries, newest first, with reasons",
)
def ledger(
    member_id: str,
    ctx: CtxDep,
    limit: int = Query(50),
    before: int | None = Query(None),
) -> JSONResponse:
    return JSONResponse(
        run(ctx, lambda uow: members.ledger_page(uow, member_id, limit=limit, before=before))
    )


@router.post(
    "/members/{member_id}/redemptions",
    status_code=201,
    dependencies=[allow("redeem")],
    summary="Redeem, or reserve at checkout",
)
def redeem(
    member_id: str,
    body: RedeemIn,
    idem: IdemDep,
    ctx: CtxDep,
) -> JSONResponse:
    cmd = redemptions.Redeem(
        member_id, body.points, body.redemption_id, body.hold, body.order_id, idem=idem
    )
    status, result = run(ctx, lambda uow: redemptions.redeem(uow, cmd))
    return JSONResponse(result, status_code=status)


@router.post(
    "/members/{member_id}/adjustments",
    status_code=201,
    summary="Manual credit or debit with a reason",
)
def adjust(
    member_id: str,
    body: AdjustIn,
    # The key first: a caller without one learns nothing but "401" (FastAPI
    # resolves dependencies in signature order).
    key: Annotated[ApiKey, allow("adjust")],
    idem: IdemDep,
    ctx: CtxDep,
) -> JSONResponse:
    cmd = actions.Adjust(member_id, body.points, body.reason, f"api-key:{key.name}", idem)
    status, result = run(ctx, lambda uow: actions.adjust(uow, cmd))
    return JSONResponse(result, status_code=status)


@router.post(
    "/members/{member_id}/actions",
    status_code=201,
    dependencies=[allow("actions")],
    summary="Reward an action",
)
def action(
    member_id: str,
    body: ActionIn,
    idem: IdemDep,
    ctx: CtxDep,
) -> JSONResponse:
    cmd = actions.RewardAction(member_id, body.action, body.reference, idem)
    status, result = run(ctx, lambda uow: actions.reward_action(uow, cmd))
    return JSONResponse(result, status_code=status)
