"""/v1/ambassadors: candidates, the pipeline (invite → accept → active → alumni), tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, allow
from kizuna.services import ambassadors
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["ambassadors"])


class MoveIn(BaseModel):
    status: Literal["invited", "accepted", "active", "alumni", "declined"]
    actor: str = Field(min_length=1, max_length=200, description="Who does this.")


class TaskIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=128, description="Your id of the task.")
    kind: Literal["review", "product_monitor", "event_speaker", "custom"]
    title: str = Field(min_length=1, max_length=300)
    points: int = Field(0, ge=0, le=1_000_000, description="Granted once, on completion.")
    actor: str = Field(min_length=1, max_length=200)
    due_at: datetime | None = None


class DoneIn(BaseModel):
    actor: str = Field(min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000, description="The post or report.")
    reach: int = Field(0, ge=0, le=10**12, description="People the post reached.")


@router.get(
    "/ambassadors/candidates", dependencies=[allow("read")], summary="Who to invite, best first"
)
def candidates(ctx: CtxDep, limit: int = Query(50, ge=1, le=1000)) -> JSONResponse:
    with ctx.engine.connect() as conn:
        found = ambassadors.candidates(
            conn, datetime.now(UTC), limit=limit, window_days=ambassadors.window_days(ctx.settings)
        )
    return JSONResponse(
        {
            "candidates": [
                {
                    "member_id": c.member_id,
                    "score": round(c.score, 4),
                    "promoter": c.promoter,
                    "nps": c.nps,
                    "reviews": c.reviews,
                    "ugc": c.ugc,
                    "referrals": c.referrals,
                    "attended": c.attended,
                    "clv": c.clv,
                    "clv_rank": c.clv_rank,
                }
                for c in found
            ]
        }
    )


@router.get("/ambassadors", dependencies=[allow("read")], summary="The pipeline with impact")
def pipeline(ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        rows = ambassadors.pipeline(conn)
    for r in rows:
        for k in ("invited_at", "accepted_at", "activated_at", "alumni_at"):
            r[k] = r[k].isoformat() if r[k] else None
        r.pop("name", None)
    return JSONResponse({"ambassadors": rows})


@router.get("/ambassadors/{member_id}", dependencies=[allow("read")], summary="One ambassador")
def show(member_id: str, ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse(ambassadors.ambassador(conn, member_id))


@router.post(
    "/ambassadors/{member_id}/status",
    dependencies=[allow("actions")],
    summary="Move an ambassador to the next status",
)
def move(member_id: str, body: MoveIn, ctx: CtxDep) -> JSONResponse:
    uow = UnitOfWork(ctx.engine, ctx.settings)
    return JSONResponse(ambassadors.move(uow, member_id, body.status, body.actor))


@router.post(
    "/ambassadors/{member_id}/tasks",
    status_code=201,
    dependencies=[allow("actions")],
    summary="Give an active ambassador a task",
)
def add_task(member_id: str, body: TaskIn, ctx: CtxDep) -> JSONResponse:
    cmd = ambassadors.NewTask(
        body.task_id, member_id, body.kind, body.title, body.points, body.actor, body.due_at
    )
    status, result = ambassadors.assign_task(UnitOfWork(ctx.engine, ctx.settings), cmd)
    return JSONResponse(result, status_code=status)


@router.post(
    "/ambassador-tasks/{task_id}/complete",
    status_code=201,
    dependencies=[allow("actions")],
    summary="Complete a task; its points are granted exactly once",
)
def complete(task_id: str, body: DoneIn, ctx: CtxDep) -> JSONResponse:
    cmd = ambassadors.CompleteTask(task_id, body.actor, body.url, body.reach)
    status, result = ambassadors.complete_task(UnitOfWork(ctx.engine, ctx.settings), cmd)
    return JSONResponse(result, status_code=status)


@router.get("/ambassador-tasks", dependencies=[allow("read")], summary="Tasks, newest first")
def list_tasks(
    ctx: CtxDep,
    member_id: str | None = Query(None, max_length=128),
    status: Literal["open", "completed", "cancelled"] | None = None,
) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse({"tasks": ambassadors.tasks(conn, member_id, status)})
