"""/v1/members: summary, explained ledger, redemptions, adjustments and action rewards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, IdemDep, allow, caller, context, invalid, read_now, run
from kizuna.bootstrap import Context
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


#: ``expiring_days``: default and bounds, shared by the documented route and the served one.
EXPIRING_DAYS_DEFAULT, EXPIRING_DAYS_MIN, EXPIRING_DAYS_MAX = 30, 1, 366
_expiring_days = TypeAdapter(Annotated[int, Field(ge=EXPIRING_DAYS_MIN, le=EXPIRING_DAYS_MAX)])


async def _summary_answer(ctx: Context, member_id: str, expiring_days: int) -> JSONResponse:
    # A read: it takes no place in the SQLite writers' queue (nothing is committed).
    # One indexed statement (see ``members.summary``): on SQLite, an in-process
    # library call of a fraction of a millisecond, it runs on the event loop,
    # which costs less than the hop to a worker thread; on PostgreSQL the
    # round trip waits on the network, so it goes to a thread and the loop
    # serves other requests meanwhile, and it runs in autocommit (``read_now``:
    # one round trip, not BEGIN, the statement and ROLLBACK).
    def answer() -> dict[str, Any]:
        return read_now(ctx, lambda uow: members.summary(uow, member_id, soon_days=expiring_days))

    if ctx.settings.is_sqlite:
        return JSONResponse(answer())
    return JSONResponse(await run_in_threadpool(answer))


@router.get("/members/{member_id}", include_in_schema=False)
async def served_summary(request: Request) -> JSONResponse:
    """The member summary as served: :func:`summary` without FastAPI's dependency
    resolution, which was a third of this call's CPU in the server.

    Registered ahead of :func:`summary` (same path and method), so it is the
    one that answers; :func:`summary` stays the published description. It does
    what FastAPI did for :func:`summary`, in the same order — the key
    (:func:`~kizuna.api.deps.caller`: 401, then 429), its scope (403), then
    ``expiring_days`` validated by the same pydantic constraint and refused as
    the same ``RequestValidationError`` (422) — so every answer is the same
    (``tests/api/test_member_summary_http.py``).
    """
    key = await caller(request)
    key.require("member")
    raw = request.query_params.get("expiring_days")
    days = EXPIRING_DAYS_DEFAULT
    if raw is not None:
        try:
            days = _expiring_days.validate_python(raw)
        except PydanticValidationError as exc:
            raise invalid(exc, "query", "expiring_days") from None
    return await _summary_answer(context(request), request.path_params["member_id"], days)


@router.get(
    "/members/{member_id}",
    dependencies=[allow("member")],
    summary="Available, pending, expiring soon, tier and progress",
    description="Readable by every scope, `pos` included: a till shows the balance and "
    "tier before earning or redeeming. The ledger stays with the reading scopes.",
)
async def summary(
    member_id: str,
    ctx: CtxDep,
    expiring_days: int = Query(EXPIRING_DAYS_DEFAULT, ge=EXPIRING_DAYS_MIN, le=EXPIRING_DAYS_MAX),
) -> JSONResponse:
    """The published operation; :func:`served_summary` answers it."""
    return await _summary_answer(ctx, member_id, expiring_days)


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
