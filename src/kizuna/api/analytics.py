"""/v1/scoring-runs and /v1/analytics: start and read scoring runs; KPIs, RFM, matrix, cohorts, lifecycle.

Everything is computed by the services behind ``kizuna score``, ``kizuna
kpi``, ``kizuna rfm``, ``kizuna matrix``, ``kizuna cohorts`` and ``kizuna
lifecycle`` (:mod:`kizuna.services.scoring`,
:mod:`kizuna.services.analytics_queries`), so the API, the CLI and the
dashboard show the same numbers. ``POST /v1/scoring-runs`` computes a run
during the request (seconds for thousands of customers); for millions queue
it with ``POST /v1/scoring-jobs`` (:mod:`kizuna.api.scoring_jobs`), which a
worker runs.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, finite
from kizuna.api.pagination import CursorArg, Limit, Page, after_id, page_response
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.customers import jsonable
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores, scoring_runs

# The analytics services load SciPy, Ibis and DuckDB; they are imported by
# the operations that use them, so an API process starts without them.

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.services.scoring import RunInfo

router = APIRouter(tags=["analytics"])
log = logging.getLogger("kizuna.api")
RunId = Annotated[int, Path(ge=1, le=2**62, description="The run's id.")]
#: One scoring run at a time per process: a second request gets a 409 instead
#: of doubling the load (runs are versioned, so two processes are still safe).
_scoring = threading.Lock()


class RunOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 4,
                    "version": 4,
                    "as_of": "2026-10-31",
                    "created_at": "2026-11-26T01:00:00+00:00",
                    "customers": 12000,
                    "kpis": {"nps": 21.5, "repeat_rate": 0.38},
                    "models": {"bgnbd": {"r": 0.24, "alpha": 4.41}},
                    "timings": {"total": 3.2},
                }
            ]
        }
    )
    id: int
    version: int
    as_of: date
    created_at: datetime
    customers: int
    kpis: dict[str, Any]
    models: dict[str, Any]
    timings: dict[str, Any]


class RunIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-10-31"}]})
    as_of: date | None = Field(
        None, description="Score as of this day (default: the day of the latest order)."
    )


class Table(BaseModel):
    """A table as records: one object per row, keyed by column name."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "columns": ["month", "nps", "margin_of_error"],
                    "rows": [{"month": "2026-10", "nps": 21.5, "margin_of_error": 4.1}],
                }
            ]
        }
    )
    columns: list[str]
    rows: list[dict[str, Any]]


class MatrixCell(BaseModel):
    loyalty: str = Field(description="true, latent, spurious, none or attitude_unknown.")
    customers: int
    revenue: int = Field(description="Total spend of these customers in minor units.")
    customer_share: float
    revenue_share: float


class MatrixOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": 4,
                    "cells": [
                        {
                            "loyalty": "true",
                            "customers": 800,
                            "revenue": 52000000,
                            "customer_share": 0.08,
                            "revenue_share": 0.41,
                        }
                    ],
                }
            ]
        }
    )
    run_id: int
    cells: list[MatrixCell]


class LifecycleOut(BaseModel):
    trend: Table = Field(description="Customers per stage per month.")
    transitions: Table = Field(description="Last month's moves, from stage (rows) to stage.")


def _run(info: RunInfo) -> dict[str, Any]:
    return dict(finite(jsonable(vars(info))))


def _table(frame: pd.DataFrame, index: str | None = None) -> dict[str, Any]:
    if index is not None:
        frame = frame.reset_index(names=index)
    frame = frame.astype(object).where(frame.notna(), None)
    columns = [str(c) for c in frame.columns]
    rows = [
        {str(k): finite(_plain(v)) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    return {"columns": columns, "rows": rows}


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as plain JSON values."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return jsonable(value)


@router.post(
    "/scoring-runs",
    status_code=201,
    response_model=RunOut,
    summary="Score every customer now and store the run",
)
def start_run(body: RunIn, ctx: CtxDep, _: Annotated[ApiKey, allow("score")]) -> JSONResponse:
    from kizuna.services import scoring

    with ctx.engine.connect() as conn:
        has_orders = conn.execute(sa.select(t.orders.c.id).limit(1)).first() is not None
    if not has_orders:
        raise ValidationError(
            "nothing to score: there are no orders yet; ingest orders first (POST /v1/imports)"
        )
    if not _scoring.acquire(blocking=False):
        raise Conflict(
            "a scoring run is already in progress; wait for it and read GET /v1/scoring-runs"
        )
    try:
        info, _result = scoring.score(ctx, as_of=body.as_of)
    except (sa.exc.IntegrityError, ValueError, ArithmeticError) as exc:
        # The models could not be fitted (too few customers or orders give
        # undefined estimates); the run was rolled back, nothing is stored.
        log.warning("scoring run failed on this data: %s", exc)
        raise ValidationError(
            "scoring could not fit its models to the data as it is (too few customers with "
            "repeat orders give undefined estimates); nothing was stored. Ingest more order "
            "history and start the run again"
        ) from None
    finally:
        _scoring.release()
    return JSONResponse(_run(info), status_code=201)


def _latest(ctx: CtxDep) -> RunInfo:
    from kizuna.services import scoring

    try:
        return scoring.latest_run(ctx)
    except NotFound:
        raise NotFound(
            "no scoring run yet; start one with POST /v1/scoring-runs (or `kizuna score`)"
        ) from None


@router.get("/scoring-runs", response_model=Page[RunOut], summary="Complete runs, oldest first")
def list_runs(
    request: Request,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    from kizuna.services import scoring

    after = after_id(ctx, "scoring-runs", cursor)
    runs = sorted((r for r in scoring.runs(ctx) if r.id > after), key=lambda r: r.id)
    return page_response(
        request, ctx, "scoring-runs", runs[: limit + 1], limit, key=lambda r: r.id, item=_run
    )


@router.get("/scoring-runs/latest", response_model=RunOut, summary="The newest complete run")
def latest(ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    return JSONResponse(_run(_latest(ctx)))


@router.get("/scoring-runs/{run_id}", response_model=RunOut, summary="One run")
def get_run(run_id: RunId, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    from kizuna.services import scoring

    for info in scoring.runs(ctx):
        if info.id == run_id:
            return JSONResponse(_run(info))
    raise NotFound(f"no complete scoring run with id {run_id}; list them with GET /v1/scoring-runs")


@router.get(
    "/analytics/kpis",
    response_model=Table,
    summary="NPS with margin of error, CSAT, CES, repeat rate (monthly: and retention/churn)",
)
def kpis(
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    since: Annotated[date | None, Query(description="First local day included.")] = None,
    until: Annotated[date | None, Query(description="Last local day included.")] = None,
    monthly: Annotated[bool, Query(description="One row per month.")] = False,
) -> JSONResponse:
    from kizuna.services import analytics_queries as aq

    if since and until and since > until:
        raise ValidationError(f"since ({since}) is after until ({until}); swap them")
    return JSONResponse(_table(aq.kpi_frame(ctx, since, until, monthly)))


@router.get(
    "/analytics/rfm",
    response_model=Table,
    summary="Customers, mean spend, CLV and P(alive) per RFM segment of the latest run",
)
def rfm(ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    from kizuna.services import analytics_queries as aq

    _latest(ctx)
    rows = [finite(r) for r in aq.segment_table(ctx)]
    columns = ["segment", "customers", "mean_spend", "mean_clv", "mean_p_alive"]
    return JSONResponse({"columns": columns, "rows": rows})


@router.get(
    "/analytics/matrix",
    response_model=MatrixOut,
    summary="The loyalty matrix of the latest run: customers and revenue per class",
)
def matrix(ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    from kizuna.services.dashboard_figures import matrix_counts

    run = _latest(ctx)
    # The dashboard's figure, stored once per run: the same counts, one row read.
    found = matrix_counts(ctx, run)
    total = sum(n for n, _ in found.values()) or 1
    revenue = sum(v for _, v in found.values()) or 1
    cells = [
        {
            "loyalty": c,
            "customers": n,
            "revenue": v,
            "customer_share": n / total,
            "revenue_share": v / revenue,
        }
        for c, (n, v) in found.items()
    ]
    return JSONResponse({"run_id": run.id, "cells": cells})


@router.get(
    "/analytics/cohorts",
    response_model=Table,
    summary="Cohort retention: first-purchase month down, months since across",
)
def cohorts(
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    value: Annotated[
        Literal["share", "customers"],
        Query(description="share = retained fraction; customers = retained count."),
    ] = "share",
) -> JSONResponse:
    from kizuna.services import analytics_queries as aq

    with ctx.engine.connect() as conn:
        if conn.execute(sa.select(t.orders.c.id).limit(1)).first() is None:
            return JSONResponse({"columns": ["cohort", "customers"], "rows": []})
    return JSONResponse(_table(aq.cohort_frame(ctx, value), index="cohort"))


@router.get(
    "/analytics/lifecycle",
    response_model=LifecycleOut,
    summary="Lifecycle stage counts per month and last month's transitions",
)
def lifecycle(
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    months: Annotated[int, Query(ge=1, le=60, description="Months of trend.")] = 12,
) -> JSONResponse:
    from kizuna.services import analytics_queries as aq

    trend, moves = aq.lifecycle_frames(ctx, months)
    return JSONResponse(
        {
            "trend": _table(trend, index="month"),
            "transitions": _table(moves, index="from_stage"),
        }
    )


@router.get(
    "/scoring-runs/{run_id}/scores",
    response_model=Page[dict[str, Any]],
    summary="Per-customer scores of a run (RFM, CLV, P(alive), loyalty, lifecycle)",
)
def scores(
    request: Request,
    run_id: RunId,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    after = after_id(ctx, f"scores:{run_id}", cursor)
    s = customer_scores
    cols = [c for c in s.c if c.name not in ("run_id", "customer_id")]
    with ctx.engine.connect() as conn:
        if (
            conn.execute(sa.select(scoring_runs.c.id).where(scoring_runs.c.id == run_id)).first()
            is None
        ):
            raise NotFound(f"no scoring run with id {run_id}; list them with GET /v1/scoring-runs")
        rows = conn.execute(
            sa.select(s.c.customer_id.label("pk"), t.customers.c.external_id, *cols)
            .select_from(s.join(t.customers, t.customers.c.id == s.c.customer_id))
            .where(s.c.run_id == run_id, s.c.customer_id > after)
            .order_by(s.c.customer_id)
            .limit(limit + 1)
        ).all()

    def item(r: Any) -> dict[str, Any]:
        row = dict(r._mapping)
        row.pop("pk")
        row["customer_id"] = row.pop("external_id")
        return dict(finite(jsonable(row)))

    return page_response(
        request, ctx, f"scores:{run_id}", rows, limit, key=lambda r: r.pk, item=item
    )
