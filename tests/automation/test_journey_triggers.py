"""Segment-entry and after-purchase triggers, branches, splits, tasks, attributes and a signed webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.automation.channels.webhook import signature
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.services import journeys, segments
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

NOW = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def test_detractor_journey_branches_to_webhook_or_task(
    workspace: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    with workspace.engine.begin() as conn:
        ids = [add(conn, t.customers, external_id=f"d{n}", name=f"d{n}") for n in range(6)]
        for n, cid in enumerate(ids):
            add(conn, t.survey_answers, external_id=f"s{n}", customer_id=cid, kind="nps", score=3,
                answered_at=NOW - timedelta(days=2))  # fmt: skip
            if n % 2 == 0:
                add(
                    conn,
                    t.consents,
                    customer_id=cid,
                    channel="email",
                    granted=True,
                    changed_at=NOW,
                    source="t",
                )
    segments.handle_save(segments.SaveSegment(
        {"name": "detractors", "rule": {"survey": "nps", "op": "lte", "value": 6, "days": 30}}), uow(workspace))  # fmt: skip
    segments.handle_refresh(segments.RefreshSegment("detractors"), uow(workspace), now=NOW)
    doc = {
        "name": "recover", "holdout_percent": 0, "trigger": {"segment_entry": "detractors"},
        "steps": [
            {"id": "ab", "split": [{"next": "check", "weight": 1}, {"next": "check", "weight": 1}]},
            {"id": "check", "if": {"consent": "email"}, "then": "hook", "else": "call"},
            {"id": "hook", "action": "webhook", "url": f"http://127.0.0.1:{server.server_port}/h",
             "secret_env": "HOOK_SECRET"},
            {"id": "done", "exit": True},
            {"id": "call", "action": "create_task", "title": "Call {{ name }} (detractor)"},
            {"id": "tag", "action": "set_attribute", "key": "detractor_called", "value": True},
        ],
    }  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
    journeys.set_status("recover", "active", uow(workspace))
    run_worker(workspace, once=True, clock=lambda: NOW, worker_id="w")
    run_worker(workspace, once=True, clock=lambda: NOW + timedelta(minutes=1), worker_id="w")
    server.shutdown()

    assert len(Hook.received) == 3
    for headers, body in Hook.received:
        assert headers["X-Kizuna-Signature"] == signature(
            "s3cret", headers["X-Kizuna-Timestamp"], body
        )
        assert json.loads(body)["journey"] == "recover"
    with workspace.engine.connect() as conn:
        tasks = (
            conn.execute(sa.select(at.journey_tasks.c.title).order_by(at.journey_tasks.c.id))
            .scalars()
            .all()
        )
        attrs = (
            conn.execute(sa.select(t.customers.c.attributes).order_by(t.customers.c.id))
            .scalars()
            .all()
        )
        runs = conn.execute(sa.select(at.journey_runs.c.status, at.journey_runs.c.variant)).all()
    assert tasks == ["Call d1 (detractor)", "Call d3 (detractor)", "Call d5 (detractor)"]
    assert [bool(a and a.get("detractor_called")) for a in attrs] == [False, True] * 3
    assert {s for s, _ in runs} == {"completed"} and {v for _, v in runs} == {"check"}

    # A refresh without changes starts nothing; leaving and re-entering starts a new run.
    segments.handle_refresh(segments.RefreshSegment("detractors"), uow(workspace), now=NOW)
    assert journeys.enroll("recover", uow(workspace), now=NOW) == 0
    with workspace.engine.begin() as conn:
        conn.execute(sa.delete(t.survey_answers).where(t.survey_answers.c.customer_id == ids[0]))
    segments.handle_refresh(segments.RefreshSegment("detractors"), uow(workspace), now=NOW)
    with workspace.engine.begin() as conn:
        add(
            conn,
            t.survey_answers,
            external_id="again",
            customer_id=ids[0],
            kind="nps",
            score=0,
            answered_at=NOW,
        )
    segments.handle_refresh(segments.RefreshSegment("detractors"), uow(workspace), now=NOW)
    assert journeys.enroll("recover", uow(workspace), now=NOW) == 1
    assert journeys.enroll("recover", uow(workspace), now=NOW) == 0


def test_days_after_last_purchase_and_exit_goal(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        buyer = add(conn, t.customers, external_id="b1", name="b1")
        other = add(conn, t.customers, external_id="b2", name="b2")
        add(
            conn,
            t.orders,
            external_id="o1",
            customer_id=buyer,
            ordered_at=NOW - timedelta(days=7),
            total_amount=1,
        )
        add(
            conn,
            t.orders,
            external_id="o2",
            customer_id=other,
            ordered_at=NOW - timedelta(days=6),
            total_amount=1,
        )
    doc = {"name": "nudge", "holdout_percent": 0, "trigger": {"days_after_last_purchase": 7},
           "goal": {"purchase_within_days": 14},
           "steps": [{"id": "w", "wait": {"days": 3}}, {"id": "t", "action": "create_task", "title": "x"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
    journeys.set_status("nudge", "active", uow(workspace))
    entries = journeys.dry_run(doc, uow(workspace), now=NOW)
    assert [e.external_id for e in entries] == ["b1"]
    run_worker(workspace, once=True, clock=lambda: NOW, worker_id="w")
    with workspace.engine.begin() as conn:  # the goal is met during the wait
        add(
            conn,
            t.orders,
            external_id="o3",
            customer_id=buyer,
            ordered_at=NOW + timedelta(days=1),
            total_amount=1,
        )
    run_worker(
        workspace, once=True, clock=lambda: NOW + timedelta(days=3, minutes=1), worker_id="w"
    )
    with workspace.engine.connect() as conn:
        assert conn.execute(sa.select(at.journey_runs.c.status)).scalars().all() == ["exited"]
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(at.journey_tasks)).scalar_one() == 0
        )


def test_the_worker_refreshes_segments_on_schedule_and_entries_start_runs(
    workspace: Context,
) -> None:
    with workspace.engine.begin() as conn:
        add(conn, t.customers, external_id="v1", name="v1", region="東京都")
    segments.handle_save(
        segments.SaveSegment({"name": "tokyo", "rule": {"field": "region", "value": "東京都"}}),
        uow(workspace),
    )
    doc = {"name": "welcome", "holdout_percent": 0, "trigger": {"segment_entry": "tokyo"},
           "steps": [{"id": "t", "action": "create_task", "title": "welcome {{ name }}"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
    journeys.set_status("welcome", "active", uow(workspace))
    stats = run_worker(
        workspace, once=True, clock=lambda: NOW, worker_id="w", refresh_segments_every_seconds=0
    )
    assert (stats.enrolled, stats.claimed) == (1, 1)
    with workspace.engine.connect() as conn:
        assert conn.execute(sa.select(at.journey_tasks.c.title)).scalars().all() == ["welcome v1"]
        assert set(conn.execute(sa.select(at.segment_refreshes.c.reason)).scalars()) == {"schedule"}


def test_order_placed_starts_one_run_per_new_order_and_anniversaries_count_years(
    workspace: Context,
) -> None:
    with workspace.engine.begin() as conn:
        cid = add(
            conn,
            t.customers,
            external_id="e1",
            name="e1",
            signup_at=datetime(2023, 6, 9, 16, tzinfo=UTC),
        )
        add(
            conn,
            t.orders,
            external_id="old",
            customer_id=cid,
            ordered_at=NOW - timedelta(days=30),
            total_amount=1,
        )
    thanks = {"name": "thanks", "holdout_percent": 0, "trigger": {"event": "order_placed"},
              "steps": [{"id": "t", "action": "create_task", "title": "thank {{ name }}"}]}  # fmt: skip
    anniversary = {"name": "anniv", "holdout_percent": 0, "trigger": {"anniversary": {}},
                   "steps": [{"id": "t", "action": "create_task", "title": "anniversary"}]}  # fmt: skip
    for doc in (thanks, anniversary):
        journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
        journeys.set_status(doc["name"], "active", uow(workspace))
    assert journeys.enroll("thanks", uow(workspace), now=NOW) == 0  # history does not trigger
    with workspace.engine.begin() as conn:
        order = add(
            conn, t.orders, external_id="new", customer_id=cid, ordered_at=NOW, total_amount=1
        )
    assert journeys.enroll("thanks", uow(workspace), now=NOW) == 1
    assert journeys.enroll("thanks", uow(workspace), now=NOW) == 0
    # Signed up 2023-06-10 01:00 in Tokyo: NOW is 2025-06-10 in Tokyo, the 2nd anniversary.
    assert journeys.enroll("anniv", uow(workspace), now=NOW) == 1
    with workspace.engine.connect() as conn:
        keys = set(conn.execute(sa.select(at.journey_runs.c.instance_key)).scalars())
    assert keys == {f"thanks:{cid}:order_placed:{order}", f"anniv:{cid}:anniversary:2"}


def test_a_system_event_starts_one_run_per_event_and_ignores_history(workspace: Context) -> None:
    from kizuna.services.events import record_event

    with workspace.engine.begin() as conn:
        cid = add(conn, t.customers, external_id="s1", name="s1")
        record_event(conn, key="old", customer_id=cid, type="tier_changed", occurred_at=NOW)
    doc = {"name": "tiers", "holdout_percent": 0, "trigger": {"event": "tier_changed"},
           "steps": [{"id": "t", "action": "create_task", "title": "congratulate {{ name }}"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
    journeys.set_status("tiers", "active", uow(workspace))
    assert journeys.enroll("tiers", uow(workspace), now=NOW) == 0  # history does not trigger
    with workspace.engine.begin() as conn:
        assert record_event(conn, key="new", customer_id=cid, type="tier_changed", occurred_at=NOW)
        # The same fact recorded again (a retried job) is one event, so one run.
        assert not record_event(
            conn, key="new", customer_id=cid, type="tier_changed", occurred_at=NOW
        )
        record_event(conn, key="other", customer_id=cid, type="page_view", occurred_at=NOW)
    assert journeys.enroll("tiers", uow(workspace), now=NOW) == 1
    assert journeys.enroll("tiers", uow(workspace), now=NOW) == 0


def test_an_event_trigger_names_a_valid_event_type() -> None:
    from kizuna.automation.runner import parse
    from kizuna.errors import JourneyError

    doc = {"name": "bad", "trigger": {"event": "Tier Changed!"},
           "steps": [{"id": "t", "action": "create_task", "title": "x"}]}  # fmt: skip
    with pytest.raises(JourneyError, match="event type"):
        parse(doc)
