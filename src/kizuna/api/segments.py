"""/v1/segments: create, read, replace and delete segments; preview, refresh, members.

A segment is the rule tree of ``docs/automation.md``; the API takes the same
document as ``kizuna segment create FILE`` (as JSON) and every rule error
points at the bad node (``segment rule /rule/and/0/field: unknown field``).
All the work is done by :mod:`kizuna.services.segments`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, fresh_uow, masked, read, write
from kizuna.api.pagination import CursorArg, Limit, Page, after_id, page_response
from kizuna.errors import Conflict
from kizuna.services import segments as svc
from kizuna.services.customers import jsonable
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

router = APIRouter(tags=["segments"])
SegmentName = Annotated[str, Path(min_length=1, max_length=100, description="The segment name.")]

EXAMPLE_RULE: dict[str, Any] = {
    "and": [
        {"field": "region", "op": "eq", "value": "Tokyo"},
        {"consent": "email"},
        {"aggregate": "orders", "op": "eq", "value": 0, "days": 90},
    ]
}


class SegmentIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "lapsed-tokyo",
                    "description": "Tokyo customers with email consent, no order for 90 days",
                    "rule": EXAMPLE_RULE,
                }
            ]
        }
    )
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    rule: dict[str, Any] = Field(description="The rule tree; see docs/automation.md.")

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "rule": self.rule}


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "new text", "rule": EXAMPLE_RULE}]}
    )
    description: str = Field("", max_length=2000)
    rule: dict[str, Any]


class SegmentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "name": "lapsed-tokyo",
                    "description": "Tokyo customers with email consent, no order for 90 days",
                    "member_count": 120,
                    "refreshed_at": "2026-11-26T01:00:00+00:00",
                    "rule": EXAMPLE_RULE,
                }
            ]
        }
    )
    id: int
    name: str
    description: str
    member_count: int
    refreshed_at: datetime | None
    rule: dict[str, Any] | None = None


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "try", "rule": EXAMPLE_RULE, "sample": 5}]}
    )
    name: str = Field("preview", min_length=1, max_length=100)
    rule: dict[str, Any]
    sample: int = Field(10, ge=0, le=100, description="How many matching customers to show.")


class SampleCustomer(BaseModel):
    customer_id: str
    name: str | None
    email: str | None


class PreviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 120,
                    "sample": [{"customer_id": "C1", "name": "山田 *", "email": "t***@example.jp"}],
                }
            ]
        }
    )
    count: int
    sample: list[SampleCustomer]


class RefreshOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment": "lapsed-tokyo",
                    "entered": 5,
                    "exited": 2,
                    "members": 120,
                    "refresh_id": 9,
                }
            ]
        }
    )
    segment: str
    entered: int
    exited: int
    members: int
    refresh_id: int


class MemberOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C1",
                    "name": "山田 太郎",
                    "entered_at": "2026-11-26T01:00:00+00:00",
                }
            ]
        }
    )
    customer_id: str
    name: str | None
    entered_at: datetime


def _row(uow: UnitOfWork, name: str) -> dict[str, Any]:
    s = at.segments
    row = uow.conn.execute(
        sa.select(
            s.c.id, s.c.name, s.c.description, s.c.member_count, s.c.refreshed_at, s.c.definition
        ).where(s.c.name == name)
    ).one_or_none()
    if row is None:
        svc.get_definition(name, uow)  # raises the service's NotFound
    assert row is not None
    out = dict(row._mapping)
    out["rule"] = (out.pop("definition") or {}).get("rule")
    return jsonable(out)


@router.get("/segments", response_model=Page[SegmentOut], summary="Segments, oldest first")
def list_segments(
    request: Request,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    after = after_id(ctx, "segments", cursor)
    rows = sorted(svc.list_segments(fresh_uow(ctx)), key=lambda r: r["id"])
    rows = [r for r in rows if r["id"] > after][: limit + 1]
    return page_response(
        request, ctx, "segments", rows, limit, key=lambda r: r["id"], item=jsonable
    )


@router.post(
    "/segments",
    status_code=201,
    response_model=SegmentOut,
    summary="Create a segment and compute its members",
)
def create_segment(
    body: SegmentIn, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    try:
        write(ctx, lambda uow: svc.handle_save(svc.SaveSegment(body.document()), uow))
    except Conflict:
        raise Conflict(
            f"segment {body.name!r} exists; change it with PUT /v1/segments/{body.name} "
            "or choose another name"
        ) from None
    write(ctx, lambda uow: svc.handle_refresh(svc.RefreshSegment(body.name, "created"), uow))
    return JSONResponse(read(ctx, lambda uow: _row(uow, body.name)), status_code=201)


@router.post(
    "/segments/preview",
    response_model=PreviewOut,
    summary="How many customers a rule selects now, and a sample (saves nothing)",
)
def preview(body: PreviewIn, ctx: CtxDep, key: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    document = {"name": body.name, "rule": body.rule}
    found = svc.preview(document, fresh_uow(ctx), sample=body.sample)
    visible = key.may("personal")
    sample = [
        {
            "customer_id": r["external_id"],
            "name": masked("name", r["name"], visible),
            "email": masked("email", r["email"], visible),
        }
        for r in found.sample
    ]
    return JSONResponse({"count": found.count, "sample": sample})


@router.get("/segments/{name}", response_model=SegmentOut, summary="One segment and its rule")
def get_segment(
    name: SegmentName, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


@router.put(
    "/segments/{name}",
    response_model=SegmentOut,
    summary="Replace a segment's rule and description, then refresh its members",
)
def replace_segment(
    name: SegmentName, body: SegmentUpdate, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    read(ctx, lambda uow: _row(uow, name))  # 404 before anything is written
    document = {"name": name, "description": body.description, "rule": body.rule}
    write(ctx, lambda uow: svc.handle_save(svc.SaveSegment(document, replace=True), uow))
    write(ctx, lambda uow: svc.handle_refresh(svc.RefreshSegment(name, "updated"), uow))
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


def _delete(uow: UnitOfWork, name: str) -> None:
    with uow:
        segment_id, _ = svc.get_definition(name, uow)
        for row in uow.conn.execute(sa.select(at.journeys.c.name, at.journeys.c.definition)):
            trigger = (row.definition or {}).get("trigger") or {}
            if isinstance(trigger, dict) and name in (
                trigger.get("segment_entry"),
                trigger.get("segment_exit"),
            ):
                raise Conflict(
                    f"journey {row.name!r} starts on segment {name!r}; "
                    "delete or change that journey first"
                )
        for table in (at.segment_changes, at.segment_members, at.segment_refreshes):
            uow.conn.execute(sa.delete(table).where(table.c.segment_id == segment_id))
        uow.conn.execute(sa.delete(at.segments).where(at.segments.c.id == segment_id))
        uow.commit()


@router.delete(
    "/segments/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete a segment with its members and history",
)
def delete_segment(
    name: SegmentName, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> Response:
    write(ctx, lambda uow: _delete(uow, name))
    return Response(status_code=204)


@router.post(
    "/segments/{name}/refresh",
    response_model=RefreshOut,
    summary="Recompute the members now; records who entered and who left",
)
def refresh(name: SegmentName, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]) -> JSONResponse:
    result = write(ctx, lambda uow: svc.handle_refresh(svc.RefreshSegment(name, "api"), uow))
    return JSONResponse(vars(result))


@router.get(
    "/segments/{name}/members",
    response_model=Page[MemberOut],
    summary="The current members, by customer",
)
def members(
    request: Request,
    name: SegmentName,
    ctx: CtxDep,
    key: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    after = after_id(ctx, f"members:{name}", cursor)

    def query(uow: UnitOfWork) -> list[Any]:
        segment_id, _ = svc.get_definition(name, uow)
        m, c = at.segment_members, t.customers
        return list(
            uow.conn.execute(
                sa.select(m.c.customer_id, c.c.external_id, c.c.name, m.c.entered_at)
                .select_from(m.join(c, c.c.id == m.c.customer_id))
                .where(m.c.segment_id == segment_id, m.c.customer_id > after)
                .order_by(m.c.customer_id)
                .limit(limit + 1)
            )
        )

    visible = key.may("personal")
    return page_response(
        request,
        ctx,
        f"members:{name}",
        read(ctx, query),
        limit,
        key=lambda r: r.customer_id,
        item=lambda r: {
            "customer_id": r.external_id,
            "name": masked("name", r.name, visible),
            "entered_at": r.entered_at.isoformat(),
        },
    )
