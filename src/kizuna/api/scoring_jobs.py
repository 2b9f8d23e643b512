"""/v1/scoring-jobs: ask for a scoring run without holding the request open.

``POST /v1/scoring-runs`` scores during the request, which suits thousands
of customers. At a million a run takes minutes, so a client queues a job
here (202 Accepted, with a ``Location`` to poll), a worker runs it
(:mod:`kizuna.services.scoring_jobs`), and the job says ``done`` with the
``run_id`` to read at ``/v1/scoring-runs/{run_id}``, or ``failed`` with what
to fix. While a job is pending a second request gets that job back.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.analytics import RunIn  # a job asks for what a run does
from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow
from kizuna.api.pagination import CursorArg, Limit, Page, after_id, page_response
from kizuna.services import scoring_jobs

router = APIRouter(tags=["analytics"])
JobId = Annotated[int, Path(ge=1, le=2**62, description="The job's id.")]


class JobOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "status": "done",
                    "as_of": None,
                    "requested_at": "2026-11-26T01:00:00+00:00",
                    "requested_by": "api key kz_ab12cd (nightly)",
                    "started_at": "2026-11-26T01:00:02+00:00",
                    "finished_at": "2026-11-26T01:04:40+00:00",
                    "stage": None,
                    "attempts": 1,
                    "run_id": 12,
                    "error": None,
                }
            ]
        }
    )
    id: int
    status: str = Field(description="queued, running, done or failed.")
    as_of: date | None
    requested_at: datetime
    requested_by: str
    started_at: datetime | None
    finished_at: datetime | None
    stage: str | None = Field(description="What a running job is doing now.")
    attempts: int = Field(description="Times a worker started it (a worker that died retries).")
    run_id: int | None = Field(description="The run it made, once done.")
    error: str | None = Field(description="Why it failed and what to do.")


def _answer(job: scoring_jobs.JobInfo, status: int) -> JSONResponse:
    return JSONResponse(
        job.to_dict(), status_code=status, headers={"Location": f"/v1/scoring-jobs/{job.id}"}
    )


@router.post(
    "/scoring-jobs",
    status_code=202,
    response_model=JobOut,
    summary="Queue a scoring run for a worker (the pending job if one is queued or running)",
)
def queue_job(body: RunIn, ctx: CtxDep, key: Annotated[ApiKey, allow("score")]) -> JSONResponse:
    job, _created = scoring_jobs.enqueue(
        ctx, as_of=body.as_of, requested_by=f"api key {key.prefix} ({key.name})"
    )
    return _answer(job, 202)


@router.get("/scoring-jobs", response_model=Page[JobOut], summary="Scoring jobs, oldest first")
def list_jobs(
    request: Request,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    jobs = scoring_jobs.page(ctx, after_id(ctx, "scoring-jobs", cursor), limit)
    return page_response(
        request, ctx, "scoring-jobs", jobs, limit, key=lambda r: r.id, item=lambda r: r.to_dict()
    )


@router.get("/scoring-jobs/{job_id}", response_model=JobOut, summary="One scoring job")
def get_job(job_id: JobId, ctx: CtxDep, _: Annotated[ApiKey, allow("read")]) -> JSONResponse:
    return _answer(scoring_jobs.get(ctx, job_id), 200)
