"""/v1/journeys: create, read, replace and delete journeys; activate, pause, dry run, stats.

A journey is the document of ``docs/automation.md`` (as JSON). Saving stores a
draft; ``activate`` starts enrolment; ``pause`` keeps every run where it is.
The work is done by :mod:`kizuna.services.journeys`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, read, write
from kizuna.api.pagination import CursorArg, Limit, Page, after_id, page_response
from kizuna.errors import Conflict, JourneyError, NotFound
from kizuna.services import journeys as svc
from kizuna.services.customers import jsonable
from kizuna.services.uow import UnitOfWork
from kizuna.services.users import record_audit
from kizuna.store import automation_tables as at

router = APIRouter(tags=["journeys"])
JourneyName = Annotated[str, Path(min_length=1, max_length=100, description="The journey name.")]

EXAMPLE: dict[str, Any] = {
    "name": "welcome-back",
    "priority": 50,
    "holdout_percent": 10,
    "trigger": {"segment_entry": "lapsed-tokyo"},
    "goal": {"purchase_within_days": 14},
    "steps": [
        {
            "id": "mail",
            "action": "email",
            "subject": "{{ name }}様、お久しぶりです",
            "text": "またのご来店をお待ちしております。{{ unsubscribe_url }}",
        },
        {"id": "done", "exit": True},
    ],
}


class JourneyIn(BaseModel):
    """A journey document; every key of docs/automation.md is accepted."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})
    name: str = Field(min_length=1, max_length=100)
    trigger: dict[str, Any]
    steps: list[dict[str, Any]] = Field(min_length=1)

    def document(self) -> dict[str, Any]:
        return self.model_dump()


class JourneyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "welcome-back",
                    "status": "draft",
                    "priority": 50,
                    "created_at": "2026-11-26T01:00:00+00:00",
                    "updated_at": "2026-11-26T01:00:00+00:00",
                    "definition": EXAMPLE,
                }
            ]
        }
    )
    id: int
    name: str
    status: str = Field(description="draft, active or paused.")
    priority: int
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any]


class DryRunEntryOut(BaseModel):
    customer_id: str
    holdout: bool
    actions: list[str] = Field(description="`step:action` the customer would get.")


class DryRunOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "journey": "welcome-back",
                    "would_enter": 2,
                    "entries": [
                        {"customer_id": "C1", "holdout": False, "actions": ["mail:email"]},
                        {"customer_id": "C7", "holdout": True, "actions": []},
                    ],
                }
            ]
        }
    )
    journey: str
    would_enter: int
    entries: list[DryRunEntryOut]


class StepStats(BaseModel):
    step_id: str
    runs: dict[str, int] = Field(description="Runs now at this step, by run status.")
    sends: dict[str, int] = Field(description="Effects of this step, by send status.")


class StatsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "journey": "welcome-back",
                    "status": "active",
                    "runs": {"treated:active": 90, "holdout:active": 10},
                    "sends": {"email:sent": 88, "email:skipped": 2},
                    "steps": [
                        {
                            "step_id": "mail",
                            "runs": {"active": 0},
                            "sends": {"sent": 88, "skipped": 2},
                        }
                    ],
                }
            ]
        }
    )
    journey: str
    status: str
    runs: dict[str, int]
    sends: dict[str, int]
    steps: list[StepStats]


def _row(uow: UnitOfWork, name: str) -> dict[str, Any]:
    j = at.journeys
    row = uow.conn.execute(
        sa.select(
            j.c.id, j.c.name, j.c.status, j.c.priority, j.c.created_at, j.c.updated_at,
            j.c.definition,
        ).where(j.c.name == name)
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"no journey named {name!r}; list them with GET /v1/journeys")
    return dict(jsonable(dict(row._mapping)))


@router.get("/journeys", response_model=Page[JourneyOut], summary="Journeys, oldest first")
def list_journeys(
    request: Request,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    after = after_id(ctx, "journeys", cursor)
    j = at.journeys

    def query(uow: UnitOfWork) -> list[Any]:
        return list(
            uow.conn.execute(
                sa.select(
                    j.c.id, j.c.name, j.c.status, j.c.priority, j.c.created_at, j.c.updated_at,
                    j.c.definition,
                ).where(j.c.id > after).order_by(j.c.id).limit(limit + 1)
            )
        )  # fmt: skip

    return page_response(
        request,
        ctx,
        "journeys",
        read(ctx, query),
        limit,
        key=lambda r: r.id,
        item=lambda r: jsonable(dict(r._mapping)),
    )


@router.post(
    "/journeys",
    status_code=201,
    response_model=JourneyOut,
    summary="Create a journey as a draft (validated; nothing is sent until activated)",
)
def create_journey(
    body: JourneyIn, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    try:
        write(ctx, lambda uow: svc.handle_save(svc.SaveJourney(body.document()), uow))
    except Conflict:
        raise Conflict(
            f"journey {body.name!r} exists; change it with PUT /v1/journeys/{body.name} "
            "or choose another name"
        ) from None
    return JSONResponse(read(ctx, lambda uow: _row(uow, body.name)), status_code=201)


@router.get("/journeys/{name}", response_model=JourneyOut, summary="One journey")
def get_journey(
    name: JourneyName, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


@router.put(
    "/journeys/{name}",
    response_model=JourneyOut,
    summary="Replace a journey's definition (runs in progress continue with it)",
)
def replace_journey(
    name: JourneyName, body: JourneyIn, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    if body.name != name:
        raise JourneyError(
            f"the body names journey {body.name!r} but the URL {name!r}; "
            "a journey cannot be renamed, create a new one instead"
        )
    read(ctx, lambda uow: _row(uow, name))
    write(ctx, lambda uow: svc.handle_save(svc.SaveJourney(body.document(), replace=True), uow))
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


def _delete(uow: UnitOfWork, name: str) -> None:
    with uow:
        journey_id = int(_row(uow, name)["id"])
        runs = uow.conn.execute(
            sa.select(sa.func.count())
            .select_from(at.journey_runs)
            .where(at.journey_runs.c.journey_id == journey_id)
        ).scalar_one()
        if runs:
            raise Conflict(
                f"journey {name!r} has {runs} run(s) whose sends and measures must stay "
                "accountable; pause it (POST /v1/journeys/{name}/pause) instead of deleting"
            )
        uow.conn.execute(sa.delete(at.measures).where(at.measures.c.journey_id == journey_id))
        uow.conn.execute(sa.delete(at.journeys).where(at.journeys.c.id == journey_id))
        uow.commit()


@router.delete(
    "/journeys/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete a journey that never started a run",
)
def delete_journey(
    name: JourneyName, ctx: CtxDep, _: Annotated[ApiKey, allow("write")]
) -> Response:
    write(ctx, lambda uow: _delete(uow, name))
    return Response(status_code=204)


@router.post("/journeys/{name}/activate", response_model=JourneyOut, summary="Start enrolling")
def activate(
    name: JourneyName, ctx: CtxDep, key: Annotated[ApiKey, allow("write")]
) -> JSONResponse:
    write(ctx, lambda uow: svc.set_status(name, "active", uow))
    record_audit(ctx.engine, f"api-key:{key.prefix}", "journey_activate", {"journey": name})
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


@router.post(
    "/journeys/{name}/pause",
    response_model=JourneyOut,
    summary="Pause: runs keep their place; activate again to resume",
)
def pause(name: JourneyName, ctx: CtxDep, key: Annotated[ApiKey, allow("write")]) -> JSONResponse:
    write(ctx, lambda uow: svc.set_status(name, "paused", uow))
    record_audit(ctx.engine, f"api-key:{key.prefix}", "journey_pause", {"journey": name})
    return JSONResponse(read(ctx, lambda uow: _row(uow, name)))


def _dry_run(ctx: CtxDep, document: dict[str, Any]) -> JSONResponse:
    entries = svc.dry_run(document, UnitOfWork(ctx.engine, ctx.settings))
    return JSONResponse(
        {
            "journey": document["name"],
            "would_enter": len(entries),
            "entries": [
                {"customer_id": e.external_id, "holdout": e.holdout, "actions": e.actions}
                for e in entries
            ],
        }
    )


@router.post(
    "/journeys/dry-run",
    response_model=DryRunOut,
    summary="Who would enter a journey document today, and what they would get (writes nothing)",
)
def dry_run_document(
    body: JourneyIn, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    return _dry_run(ctx, body.document())


@router.post(
    "/journeys/{name}/dry-run",
    response_model=DryRunOut,
    summary="Who would enter the stored journey today (writes nothing)",
)
def dry_run_stored(
    name: JourneyName, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    document = read(ctx, lambda uow: _row(uow, name))["definition"]
    return _dry_run(ctx, document)


@router.get(
    "/journeys/{name}/stats",
    response_model=StatsOut,
    summary="Runs by group and status, sends by action, and per-step counts",
)
def stats(name: JourneyName, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    found = svc.stats(name, UnitOfWork(ctx.engine, ctx.settings))
    r, s = at.journey_runs, at.sends

    def per_step(uow: UnitOfWork) -> list[dict[str, Any]]:
        journey_id = int(_row(uow, name)["id"])
        steps: dict[str, dict[str, dict[str, int]]] = {}
        for step, status, n in uow.conn.execute(
            sa.select(r.c.step_id, r.c.status, sa.func.count())
            .where(r.c.journey_id == journey_id, r.c.step_id.is_not(None))
            .group_by(r.c.step_id, r.c.status)
        ):
            steps.setdefault(step, {"runs": {}, "sends": {}})["runs"][status] = int(n)
        for step, status, n in uow.conn.execute(
            sa.select(s.c.step_id, s.c.status, sa.func.count())
            .where(s.c.journey_id == journey_id)
            .group_by(s.c.step_id, s.c.status)
        ):
            steps.setdefault(step, {"runs": {}, "sends": {}})["sends"][status] = int(n)
        return [{"step_id": k, **v} for k, v in sorted(steps.items())]

    return JSONResponse({**found, "steps": read(ctx, per_step)})
