"""Health, readiness, Prometheus metrics, request ids and masked JSON logs, through real HTTP."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.apiclient import make_key
from tests.operations.conftest import add_journey_run
from tests.web.webclient import add_users, client, login

from kizuna.api import create_app
from kizuna.bootstrap import Context, open_context
from kizuna.observability import logs
from kizuna.observability.context import request_id
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.web import create_dashboard_app


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON logs of this test, and the logging set-up put back afterwards."""
    stream = io.StringIO()
    names = ("kizuna", "uvicorn", "uvicorn.access")
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    logs.configure_logging("json", "INFO", stream)
    yield stream
    for name, (level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for h in [h for h in logger.handlers if h.get_name() == "kizuna-ops"]:
            logger.removeHandler(h)
        logger.setLevel(level)
        logger.propagate = propagate


def _customer(ctx: Context) -> int:
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(t.customers)
                .values(external_id="OBS1", email="hana@example.jp", signup_at=now)
                .returning(t.customers.c.id)
            ).scalar_one()
        )


def test_health_readiness_and_protected_metrics(workspace: Context, tmp_path: Path) -> None:
    cid = _customer(workspace)
    add_journey_run(workspace, cid, "550 no such user", "call")
    with workspace.engine.begin() as conn:
        jid = conn.execute(sa.select(at.journeys.c.id)).scalar_one()
        conn.execute(
            sa.insert(at.journey_runs).values(
                customer_id=cid,
                journey_id=jid,
                instance_key="due",
                status="active",
                holdout=False,
                step_id="s1",
                due_at=datetime.now(UTC) - timedelta(minutes=3),
                started_at=datetime.now(UTC),
            )
        )
    admin, pos = make_key(workspace, "admin"), make_key(workspace, "pos")
    http = TestClient(create_app(workspace))
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"

    assert http.get("/metrics").status_code == 401
    refused = http.get("/metrics", headers={"Authorization": f"Bearer {pos}"})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    body = http.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).text
    assert (
        'kizuna_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",status="200"}'
        in body
    )
    assert "kizuna_journey_steps_due 1.0" in body
    lag = next(
        line for line in body.splitlines() if line.startswith("kizuna_journey_queue_lag_seconds ")
    )
    assert 170 < float(lag.split()[1]) < 600
    assert "kizuna_dead_letters 1.0" in body
    assert 'kizuna_sends_total{action="email",status="dead"} 1.0' in body
    assert 'kizuna_journey_runs{status="dead"} 1.0' in body
    assert "kizuna_workers_alive 0.0" in body

    # Not ready: a database with no schema.
    empty = open_context(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    not_ready = TestClient(create_app(empty)).get("/readyz")
    assert not_ready.status_code == 503
    assert "kizuna db upgrade" in not_ready.json()["detail"]
    empty.dispose()


def test_request_ids_are_propagated_and_logs_are_json_with_personal_data_masked(
    sqlite_workspace: Context, captured: io.StringIO
) -> None:
    http = TestClient(create_app(sqlite_workspace))
    given = http.get("/healthz", headers={"X-Request-ID": "pos-42.a"})
    assert given.headers["X-Request-ID"] == "pos-42.a"
    made = http.get("/readyz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(made.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    health = next(doc for doc in lines if doc.get("route") == "/healthz")
    assert health["request_id"] == "pos-42.a" and health["status"] == 200
    assert health["level"] == "INFO" and health["logger"] == "kizuna.http"

    token = request_id.set("r-1")
    try:
        logging.getLogger("kizuna.test").warning(
            "could not mail %s at %s",
            "hana.sato@example.jp",
            "090-1234-5678",
            extra={"email": "hana.sato@example.jp", "note": "tel 03-1234-5678"},
        )
    finally:
        request_id.reset(token)
    doc = json.loads(captured.getvalue().splitlines()[-1])
    text = json.dumps(doc)
    assert "hana.sato@example.jp" not in text and "1234-5678" not in text
    assert doc["message"] == "could not mail h***@example.jp at [phone]"
    assert doc["email"] == "***" and doc["request_id"] == "r-1"


@pytest.mark.anyio
async def test_operations_page_shows_the_queue_and_dead_letters_to_admins_only(
    workspace: Context,
) -> None:
    cid = _customer(workspace)
    add_journey_run(workspace, cid, "550 mailbox unavailable", "call")
    add_users(workspace)
    app = create_dashboard_app(workspace)
    async with client(app, **{"Accept-Language": "en"}) as http:
        await login(http, "admin")
        page = await http.get("/operations")
        assert page.status_code == 200
        assert "Dead letters" in page.text and "550 mailbox unavailable" in page.text
        assert "OBS1" in page.text
        csv = await http.get("/operations/dead-letters.csv")
        assert csv.status_code == 200 and "550 mailbox unavailable" in csv.text
    async with client(app, **{"Accept-Language": "ja"}) as http:
        await login(http, "admin")
        page = await http.get("/operations")
        assert "デッドレター" in page.text
    async with client(app) as http:
        await login(http, "marketer")
        assert (await http.get("/operations")).status_code == 403
