"""``kizuna doctor`` names every problem of a broken deployment and passes a healthy one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import free_port, smtp_sink
from typer.testing import CliRunner

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.services.doctor import diagnose
from kizuna.store import automation_tables as at
from kizuna.store import operations_tables as ops


def _doctor(workspace: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["-w", workspace, "doctor", "--smtp-timeout", "2"])
    return result.exit_code, result.output


def test_a_broken_configuration_names_each_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "broken"
    ws.mkdir()
    empty_db = tmp_path / "never-migrated.sqlite"
    sa.create_engine(f"sqlite:///{empty_db}").connect().close()
    (ws / "kizuna.toml").write_text(
        "[kizuna]\n"
        'timezone = "Mars/Olympus_Mons"\n'
        f'database_url = "sqlite:///{empty_db}"\n'
        f"smtp_port = {free_port()}\n"
        'email_from = "not an address"\n'
    )
    code, out = _doctor(str(ws), monkeypatch)
    assert code == 1
    lines = out.splitlines()

    def line(fragment: str) -> str:
        found = [ln for ln in lines if fragment in ln]
        assert found, f"no line about {fragment!r} in:\n{out}"
        return found[0]

    assert "unknown IANA timezone 'Mars/Olympus_Mons'" in line("setting timezone")
    assert line("setting timezone").startswith("FAIL")
    assert "no Kizuna schema" in line("database:") and "kizuna db upgrade" in line("database:")
    assert "cannot talk to SMTP" in line("smtp:") and line("smtp:").startswith("FAIL")
    assert "is not an email address" in line("setting email_from")
    assert "problem(s) to fix" in out


def test_an_unreachable_database_is_named_with_its_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://kizuna:pw-XYZZY@127.0.0.1:{free_port()}/shop"
    code, out = _doctor(url, monkeypatch)
    assert code == 1
    db = next(ln for ln in out.splitlines() if ln.startswith("FAIL database"))
    assert "cannot reach postgresql+psycopg://kizuna:***@127.0.0.1" in db
    assert "pw-XYZZY" not in out


def test_a_healthy_deployment_passes_with_a_live_worker(
    workspace: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(workspace,),
        kwargs={"stop_event": stop, "poll_seconds": 0.1, "programme_jobs_every_seconds": None},
    )
    with smtp_sink() as (_sink, port):
        monkeypatch.setenv("KIZUNA_SMTP_PORT", str(port))
        monkeypatch.setenv("KIZUNA_EMAIL_FROM", "Shop <news@shop.example.jp>")
        monkeypatch.setenv("KIZUNA_SECRET_KEY", "s3cret-for-all-hosts")
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with workspace.engine.connect() as conn:
                    if conn.execute(sa.select(ops.worker_heartbeats.c.worker_id)).first():
                        break
                time.sleep(0.1)
            ws = str(workspace.settings.workspace)
            code, out = _doctor(ws, monkeypatch)
        finally:
            stop.set()
            worker.join(30)
    assert code == 0, out
    assert "1 worker(s) alive" in out and "answers EHLO" in out and "schema at head" in out
    if workspace.engine.dialect.name == "postgresql":
        assert "database clock is" in out
    # A clean stop removes the heartbeat: no worker is reported dead.
    with workspace.engine.connect() as conn:
        assert conn.execute(sa.select(ops.worker_heartbeats)).first() is None


def test_silent_workers_with_active_journeys_fail(workspace: Context) -> None:
    now = datetime.now(UTC)
    with workspace.engine.begin() as conn:
        conn.execute(
            sa.insert(ops.worker_heartbeats).values(
                worker_id="host-b:77",
                hostname="host-b",
                pid=77,
                started_at=now - timedelta(hours=1),
                seen_at=now - timedelta(minutes=30),
            )
        )
        conn.execute(
            sa.insert(at.journeys).values(
                name="welcome",
                definition={},
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
    checks = diagnose(str(workspace.settings.workspace), smtp_timeout=0.5)
    workers = [c for c in checks if c.name == "workers"]
    assert workers[0].status == "fail" and "no worker seen" in workers[0].message
    assert workers[1].status == "warn" and "host-b:77" in workers[1].message
