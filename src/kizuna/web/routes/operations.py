"""Operations page (admins): journey queue health, workers, scoring jobs and dead letters.

Reads the same :func:`kizuna.observability.metrics.queue_state` that
``/metrics`` exports, so the page and Prometheus never disagree. Dead
letters are shown read-only: the automation layer has no re-drive function
yet, and resetting runs by hand here would bypass its idempotency rules.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.errors import KizunaError
from kizuna.observability.metrics import queue_state
from kizuna.services import scoring_jobs
from kizuna.services.users import User
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.web.auth import context_of, require
from kizuna.web.export import csv_response
from kizuna.web.nav import NavItem, register, register_router
from kizuna.web.render import render, translator

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]
DEAD_LIMIT = 200
JOBS_SHOWN = 20


def _dead_letters(engine: sa.Engine, limit: int | None = DEAD_LIMIT) -> list[dict[str, Any]]:
    s, j, c = at.sends.c, at.journeys.c, t.customers.c
    query = (
        sa.select(
            s.id,
            s.created_at,
            s.done_at,
            c.external_id.label("customer"),
            j.name.label("journey"),
            s.step_id,
            s.action,
            s.reason,
        )
        .select_from(
            at.sends.join(at.journeys, j.id == s.journey_id).join(
                t.customers, c.id == s.customer_id
            )
        )
        .where(s.status == "dead")
        .order_by(s.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


@router.get("/operations")
def operations_page(request: Request, user: Admin) -> Response:
    ctx = context_of(request)
    state = queue_state(ctx.engine)
    jobs = scoring_jobs.recent(ctx, JOBS_SHOWN)
    return render(
        request,
        "operations/queue.html",
        state=state,
        dead=_dead_letters(ctx.engine),
        dead_limit=DEAD_LIMIT,
        jobs=jobs,
        stage_label=_stage_label(request),
        jobs_pending=any(j.status in ("queued", "running") for j in jobs),
        scoring_error=request.query_params.get("scoring_error"),
    )


def _stage_label(request: Request) -> Any:
    """What a running scoring job is doing, in the viewer's language (a stage
    added later without a message is shown by its name)."""
    tr = translator(request)

    def label(stage: str) -> str:
        key = f"operations.stage_{stage}"
        return tr(key) if tr.has(key) else stage

    return label


@router.post("/operations/scoring-jobs")
def queue_scoring(request: Request, user: Admin) -> Response:
    """Queue a scoring run for the worker (the pending one if there is one)."""
    try:
        scoring_jobs.enqueue(context_of(request), as_of=None, requested_by=f"user {user.username}")
    except KizunaError:
        return RedirectResponse("/operations?scoring_error=no_orders#scoring-jobs", status_code=303)
    return RedirectResponse("/operations#scoring-jobs", status_code=303)


@router.get("/operations/dead-letters.csv")
def dead_letters_csv(request: Request, user: Admin) -> Response:
    ctx = context_of(request)
    header = ("id", "created_at", "done_at", "customer", "journey", "step", "action", "reason")
    rows = (
        (
            r["id"],
            r["created_at"],
            r["done_at"],
            r["customer"],
            r["journey"],
            r["step_id"],
            r["action"],
            r["reason"],
        )
        for r in _dead_letters(ctx.engine, None)
    )
    return csv_response(ctx.engine, user, "dead_letters", header, rows)


register_router(router)
register(NavItem("operations", "/operations", "operations.nav", ("admin",), 95))
