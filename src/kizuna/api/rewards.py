"""/v1/rewards: the catalogue, and spending points on a reward."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, IdemDep, allow, run
from kizuna.services.programme import rewards

router = APIRouter(tags=["rewards"])
StrictInt = Annotated[int, Field(strict=True)]


class RewardIn(BaseModel):
    reward_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=300)
    points_cost: StrictInt
    stock: StrictInt | None = None
    per_member_limit: StrictInt | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class ClaimIn(BaseModel):
    redemption_id: str = Field(min_length=1, max_length=128)


@router.get("/rewards", dependencies=[allow("read")], summary="The rewards catalogue")
def catalogue(ctx: CtxDep) -> JSONResponse:
    return JSONResponse({"items": run(ctx, rewards.catalogue)})


@router.post("/rewards", status_code=201, dependencies=[allow("coupons")], summary="Add a reward")
def create(body: RewardIn, ctx: CtxDep) -> JSONResponse:
    cmd = rewards.NewReward(**body.model_dump())
    return JSONResponse(run(ctx, lambda uow: rewards.create_reward(uow, cmd)), status_code=201)


@router.post(
    "/members/{member_id}/rewards/{reward_id}",
    status_code=201,
    dependencies=[allow("redeem")],
    summary="Spend points on a reward (stock, limit and balance checked together)",
)
def claim(
    member_id: str, reward_id: str, body: ClaimIn, idem: IdemDep, ctx: CtxDep
) -> JSONResponse:
    cmd = rewards.ClaimReward(member_id, reward_id, body.redemption_id, idem)
    status, result = run(ctx, lambda uow: rewards.claim(uow, cmd))
    return JSONResponse(result, status_code=status)
