"""/v1/community: user groups, events (online or offline), registration, check-in, metrics."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, allow
from kizuna.bootstrap import Context
from kizuna.services import community
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["community"])


class GroupIn(BaseModel):
    group_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=5000)
    online: bool = False


class JoinIn(BaseModel):
    member_id: str = Field(min_length=1, max_length=128)
    brought_by: str | None = Field(None, max_length=128, description="The member who brought them.")


class EventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=300)
    kind: Literal["meetup", "webinar", "user_group", "workshop", "conference"]
    starts_at: datetime = Field(description="With a timezone offset.")
    online: bool = False
    location: str | None = Field(None, max_length=300)
    url: str | None = Field(None, max_length=2000)
    capacity: int | None = Field(None, ge=0)
    group_id: str | None = Field(None, max_length=128)


class CheckInRow(BaseModel):
    member_id: str = Field(min_length=1, max_length=128)
    checked_in_at: datetime | None = None


class CheckInIn(BaseModel):
    attendees: list[CheckInRow] = Field(min_length=1, max_length=100_000)
    actor: str = Field("api", min_length=1, max_length=200)


def _uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


@router.post("/community/groups", dependencies=[allow("actions")], summary="Create a user group")
def create_group(body: GroupIn, ctx: CtxDep) -> JSONResponse:
    result = community.create_group(
        _uow(ctx), body.group_id, body.name, body.description, body.online
    )
    return JSONResponse(result, status_code=201)


@router.get("/community/groups", dependencies=[allow("read")], summary="User groups")
def list_groups(ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse({"groups": community.groups(conn)})


@router.post(
    "/community/groups/{group_id}/members",
    dependencies=[allow("actions")],
    summary="Add a member to a group",
)
def join(group_id: str, body: JoinIn, ctx: CtxDep) -> JSONResponse:
    return JSONResponse(community.join_group(_uow(ctx), group_id, body.member_id, body.brought_by))


@router.post(
    "/community/events", status_code=201, dependencies=[allow("actions")], summary="Create an event"
)
def create_event(body: EventIn, ctx: CtxDep) -> JSONResponse:
    cmd = community.NewEvent(
        body.event_id, body.name, body.kind, body.starts_at, body.online, body.location,
        body.url, body.capacity, body.group_id,
    )  # fmt: skip
    status, result = community.create_event(_uow(ctx), cmd)
    return JSONResponse(result, status_code=status)


@router.get("/community/events", dependencies=[allow("read")], summary="Events with attendance")
def list_events(ctx: CtxDep, limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse({"events": community.events(conn, limit)})


@router.get("/community/events/{event_id}", dependencies=[allow("read")], summary="One event")
def get_event(event_id: str, ctx: CtxDep) -> JSONResponse:
    with ctx.engine.connect() as conn:
        return JSONResponse(community.event(conn, event_id))


@router.post(
    "/community/events/{event_id}/registrations",
    status_code=201,
    dependencies=[allow("actions")],
    summary="Register a member (409 when the event is full)",
)
def register(event_id: str, body: JoinIn, ctx: CtxDep) -> JSONResponse:
    status, result = community.register(_uow(ctx), event_id, body.member_id, body.brought_by)
    return JSONResponse(result, status_code=status)


@router.post(
    "/community/events/{event_id}/check-ins",
    dependencies=[allow("actions")],
    summary="Record attendance (all or nothing; a repeat counts once)",
)
def check_in(event_id: str, body: CheckInIn, ctx: CtxDep) -> JSONResponse:
    rows = [(a.member_id, a.checked_in_at) for a in body.attendees]
    report = community.check_in(_uow(ctx), event_id, rows, body.actor)
    return JSONResponse(
        {"checked_in": report.checked_in, "walk_ins": report.walk_ins, "already": report.already}
    )


@router.get("/community/metrics", dependencies=[allow("read")], summary="Community health")
def metrics(ctx: CtxDep, days: int = Query(90, ge=1, le=3660)) -> JSONResponse:
    with ctx.engine.connect() as conn:
        m = community.metrics(conn, datetime.now(UTC), days)
    return JSONResponse({"days": days, **asdict(m)})
