"""/v1/scoring-runs and /v1/analytics over sample data: the API shows the services' numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.api.apiclient import Api
from tests.api.test_v1_customers import PROBLEM, walk

from kizuna.ingest.sample import generate
from kizuna.services import analytics_queries as aq
from kizuna.services import scoring
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths


@pytest.fixture
def sampled(api: Api, tmp_path: Path) -> Api:
    generate(tmp_path / "sample", 200, seed=5)
    import_paths(api.ctx, ImportFiles(files_in_folder(tmp_path / "sample")))
    return api


def test_without_data_or_runs_the_answers_say_what_to_do_first(api: Api) -> None:
    r = api.post("/v1/scoring-runs", {})
    assert r.status_code == 422 and "ingest orders" in r.json()["detail"]
    for path in ("/v1/scoring-runs/latest", "/v1/analytics/rfm", "/v1/analytics/matrix"):
        r = api.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        assert "POST /v1/scoring-runs" in r.json()["detail"]
    assert api.get("/v1/analytics/cohorts").json()["rows"] == []
    assert api.get("/v1/scoring-runs").json() == {"items": [], "next_cursor": None}


def test_a_scoring_run_is_started_listed_and_read(sampled: Api) -> None:
    api = sampled
    assert api.post("/v1/scoring-runs", {}, scope="analyst").status_code == 403
    started = api.post("/v1/scoring-runs", {}, scope="marketer")
    assert started.status_code == 201, started.text
    run = started.json()
    stored = scoring.latest_run(api.ctx)
    assert run["id"] == stored.id and run["customers"] == stored.customers > 0
    assert api.get(f"/v1/scoring-runs/{run['id']}", scope="analyst").json()["id"] == run["id"]
    assert api.get("/v1/scoring-runs/latest").json()["version"] == stored.version
    assert [r["id"] for r in walk(api, "/v1/scoring-runs")] == [run["id"]]
    scores = walk(api, f"/v1/scoring-runs/{run['id']}/scores", scope="analyst", limit=64)
    assert len(scores) == stored.customers == len({s["customer_id"] for s in scores})
    assert api.get("/v1/scoring-runs/999999").status_code == 404

    rfm = api.get("/v1/analytics/rfm", scope="analyst").json()
    expected = aq.segment_table(api.ctx)
    assert [(r["segment"], r["customers"]) for r in rfm["rows"]] == [
        (r["segment"], r["customers"]) for r in expected
    ]
    assert [r["mean_clv"] for r in rfm["rows"]] == pytest.approx([r["mean_clv"] for r in expected])
    matrix = api.get("/v1/analytics/matrix").json()
    assert sum(c["customers"] for c in matrix["cells"]) == stored.customers
    assert sum(c["customer_share"] for c in matrix["cells"]) == pytest.approx(1.0)

    kpis = api.get("/v1/analytics/kpis", monthly="true").json()
    frame = aq.kpi_frame(api.ctx, monthly=True)
    assert [r["month"] for r in kpis["rows"]] == list(frame["month"])
    cohorts = api.get("/v1/analytics/cohorts", value="customers").json()
    assert cohorts["columns"][:2] == ["cohort", "customers"] and cohorts["rows"]
    life = api.get("/v1/analytics/lifecycle", months=6).json()
    assert len(life["trend"]["rows"]) == 6
    bad = api.get("/v1/analytics/kpis", since="2026-02-01", until="2026-01-01")
    assert bad.status_code == 422 and "swap" in bad.json()["detail"]
