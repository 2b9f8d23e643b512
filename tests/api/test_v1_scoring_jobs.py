"""/v1/scoring-jobs: a run asked for over HTTP is queued, run by a worker, and read back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.api.apiclient import Api
from tests.api.test_v1_customers import PROBLEM

from kizuna.automation.worker import run_worker
from kizuna.ingest.sample import generate
from kizuna.services import scoring, scoring_jobs
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.store.scoring_tables import scoring_jobs as jobs_table
from kizuna.store.web_tables import run_artefacts


@pytest.fixture
def sampled(api: Api, tmp_path: Path) -> Api:
    generate(tmp_path / "sample", 200, seed=5)
    import_paths(api.ctx, ImportFiles(files_in_folder(tmp_path / "sample")))
    return api


def test_with_no_orders_the_request_says_what_to_do_first(api: Api) -> None:
    r = api.post("/v1/scoring-jobs", {})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "ingest orders" in r.json()["detail"]
    assert api.get("/v1/scoring-jobs").json() == {"items": [], "next_cursor": None}
    missing = api.get("/v1/scoring-jobs/42")
    assert missing.status_code == 404 and "GET /v1/scoring-jobs" in missing.json()["detail"]


def test_a_queued_job_is_run_by_the_worker_and_names_its_run(sampled: Api) -> None:
    api = sampled
    assert api.post("/v1/scoring-jobs", {}, scope="analyst").status_code == 403
    queued = api.post("/v1/scoring-jobs", {"as_of": "2026-10-31"}, scope="marketer")
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["status"] == "queued" and job["run_id"] is None and job["as_of"] == "2026-10-31"
    assert queued.headers["location"] == f"/v1/scoring-jobs/{job['id']}"
    assert "api key" in job["requested_by"]
    # A second request while it waits gets the same job, not a second run.
    again = api.post("/v1/scoring-jobs", {}, scope="admin")
    assert again.status_code == 202 and again.json()["id"] == job["id"]

    run_worker(api.ctx, once=True, worker_id="w1", refresh_segments_every_seconds=None)

    done = api.get(f"/v1/scoring-jobs/{job['id']}", scope="analyst").json()
    assert done["status"] == "done" and done["attempts"] == 1 and done["error"] is None
    latest = scoring.latest_run(api.ctx)
    assert done["run_id"] == latest.id and str(latest.as_of) == "2026-10-31"
    assert api.get(f"/v1/scoring-runs/{done['run_id']}").json()["customers"] == latest.customers
    assert done["started_at"] <= done["finished_at"]
    # The worker also stored the dashboard's figures of the run for every process.
    with api.ctx.engine.connect() as conn:
        keys = set(
            conn.execute(
                sa.select(run_artefacts.c.key).where(run_artefacts.c.run_id == latest.id)
            ).scalars()
        )
    assert {"matrix", "rfm", "drivers"} <= keys
    # Once it is done, a new request queues a new job.
    third = api.post("/v1/scoring-jobs", {}).json()
    assert third["id"] != job["id"] and third["status"] == "queued"
    listed = api.get("/v1/scoring-jobs", scope="analyst", limit=1)
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    assert listed.json()["next_cursor"]


def test_data_that_cannot_be_scored_fails_the_job_with_a_reason(api: Api, tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,name\nC1,A\nC2,B\n", encoding="utf-8")
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,total_amount\n"
        "O1,C1,2026-01-05,1000\nO2,C2,2026-01-06,1000\n",
        encoding="utf-8",
    )
    files = [("customers", [tmp_path / "customers.csv"]), ("orders", [tmp_path / "orders.csv"])]
    import_paths(api.ctx, ImportFiles(files))
    job = api.post("/v1/scoring-jobs", {}).json()
    finished = scoring_jobs.run_next(api.ctx, "w1")
    assert finished is not None and finished.id == job["id"]
    shown = api.get(f"/v1/scoring-jobs/{job['id']}").json()
    assert shown["status"] == "failed" and shown["run_id"] is None
    assert "nothing was stored" in shown["error"] and "Ingest more" in shown["error"]
    assert scoring.runs(api.ctx) == []
    # The same data through the synchronous route: a 422 saying the same, never a 500.
    sync = api.post("/v1/scoring-runs", {})
    assert sync.status_code == 422 and "nothing was stored" in sync.json()["detail"]
    # A failed job does not block the next request.
    assert api.post("/v1/scoring-jobs", {}).json()["id"] != job["id"]


def test_a_job_whose_worker_died_is_run_again_then_given_up(sampled: Api) -> None:
    ctx = sampled.ctx
    t0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    job, created = scoring_jobs.enqueue(ctx, as_of=None, requested_by="test", now=lambda: t0)
    assert created
    # Worker A claims it and dies without a word: the heartbeat stops at t0.
    assert scoring_jobs.claim(ctx, "A", lambda: t0) is not None
    assert scoring_jobs.claim(ctx, "B", lambda: t0 + timedelta(minutes=1)) is None  # still alive
    later = t0 + scoring_jobs.STALE + timedelta(seconds=1)
    assert scoring_jobs.has_work(ctx, lambda: later)
    again = scoring_jobs.claim(ctx, "B", lambda: later)
    assert again is not None and again.id == job.id and again.attempts == 2
    # ... and dies too, and so does C: after MAX_ATTEMPTS the job fails with a reason.
    at = later
    for worker in ("C",):
        at = at + scoring_jobs.STALE + timedelta(seconds=1)
        assert scoring_jobs.claim(ctx, worker, lambda at=at: at) is not None
    at = at + scoring_jobs.STALE + timedelta(seconds=1)
    assert scoring_jobs.claim(ctx, "D", lambda: at) is None
    gone = scoring_jobs.get(ctx, job.id)
    assert gone.status == "failed" and "stopped 3 times" in (gone.error or "")
    # A late finish from a worker that lost the job changes nothing.
    scoring_jobs._finish(ctx, job.id, "C", at, status="done", run_id=None)
    assert scoring_jobs.get(ctx, job.id).status == "failed"


def test_two_workers_claim_one_job_once(sampled: Api) -> None:
    ctx = sampled.ctx
    if ctx.settings.is_sqlite:
        pytest.skip("SQLite has one writer; the claim race is PostgreSQL's")
    job, _ = scoring_jobs.enqueue(ctx, as_of=None, requested_by="test")
    barrier = threading.Barrier(6)
    claimed: list[str] = []

    def race(i: int) -> None:
        other = type(ctx)(ctx.settings)  # its own engine, as another host would have
        barrier.wait()
        if scoring_jobs.claim(other, f"w{i}") is not None:
            claimed.append(f"w{i}")
        other.dispose()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(claimed) == 1
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job.id)).one()
    assert row.status == "running" and row.claimed_by == claimed[0] and row.attempts == 1
