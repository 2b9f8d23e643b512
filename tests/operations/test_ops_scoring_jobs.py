"""The operations page queues scoring runs for the worker and shows how they went."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.web.webclient import add_users, client, login

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.ingest.sample import generate
from kizuna.services import scoring, scoring_jobs
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.web import create_dashboard_app


@pytest.mark.anyio
async def test_an_admin_queues_a_run_that_the_worker_runs(
    workspace: Context, tmp_path: Path
) -> None:
    add_users(workspace)
    app = create_dashboard_app(workspace)
    async with client(app, **{"Accept-Language": "en"}) as http:
        csrf = await login(http, "admin")
        # Nothing to score yet: the page says what to do, nothing is queued.
        empty = await http.post("/operations/scoring-jobs", data={"csrf_token": csrf})
        assert empty.status_code == 303
        page = await http.get(empty.headers["location"])
        assert "import orders first" in page.text and scoring_jobs.recent(workspace, 5) == []

        generate(tmp_path / "sample", 200, seed=5)
        import_paths(workspace, ImportFiles(files_in_folder(tmp_path / "sample")))
        assert (await http.post("/operations/scoring-jobs", data={})).status_code == 403  # CSRF
        queued = await http.post("/operations/scoring-jobs", data={"csrf_token": csrf})
        assert queued.status_code == 303
        again = await http.post("/operations/scoring-jobs", data={"csrf_token": csrf})
        assert again.status_code == 303
        [job] = scoring_jobs.recent(workspace, 5)  # the second click joined the first
        assert job.status == "queued" and job.requested_by == "user admin"
        page = await http.get("/operations")
        assert 'data-testid="scoring-jobs"' in page.text and "queued" in page.text
        assert "already queued or running" in page.text

        run_worker(workspace, once=True, worker_id="w", refresh_segments_every_seconds=None)
        run = scoring.latest_run(workspace)
        page = await http.get("/operations")
        assert "done" in page.text and f"#{run.id}" in page.text
    async with client(app, **{"Accept-Language": "ja"}) as http:
        await login(http, "admin")
        page = await http.get("/operations")
        assert "スコアリングを登録" in page.text and "完了" in page.text
    async with client(app) as http:
        csrf = await login(http, "marketer")
        refused = await http.post("/operations/scoring-jobs", data={"csrf_token": csrf})
        assert refused.status_code == 403
    assert len(scoring_jobs.recent(workspace, 5)) == 1
