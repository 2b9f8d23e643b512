"""Per-topic subscriptions: a topic's link leaves that topic only, checked at send time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.api import create_app
from kizuna.automation.channels.email import has_consent
from kizuna.automation.runner import parse
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.errors import JourneyError
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t


def mail_journey(name: str, topic: str | None) -> dict[str, object]:
    step = {"id": "m", "action": "email", "subject": name, "text": "{{ unsubscribe_url }}"}
    if topic:
        step["topic"] = topic
    return {"name": name, "holdout_percent": 0, "trigger": {"birthday": {}}, "steps": [step]}


def activate(ctx: Context, doc: dict[str, object]) -> None:
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(doc), uow)
    journeys.set_status(str(doc["name"]), "active", uow)


def test_leaving_a_topic_stops_that_topic_and_nothing_else(workspace: Context) -> None:
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    n = 10
    with workspace.engine.begin() as conn:
        for i in range(n):
            cid = add(conn, t.customers, external_id=f"n{i}", name=f"n{i}", email=f"n{i}@example.jp",
                      birthday=today.replace(year=1990), language="ja")  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    client = TestClient(create_app(workspace))
    with smtp_sink() as (sink, port):
        ctx = Context(replace(workspace.settings, smtp_port=port))
        activate(workspace, mail_journey("news", "newsletter"))
        run_worker(ctx, once=True, programme_jobs_every_seconds=None)
        assert len(sink.messages) == n
        leavers = {"n0@example.jp", "n1@example.jp", "n2@example.jp"}
        for msg in sink.messages:
            if any(a in str(msg["To"]) for a in leavers):
                link = urlsplit(str(msg["List-Unsubscribe"]).strip().strip("<>"))
                page = client.get(f"{link.path}?{link.query}")
                assert "newsletter" in page.text and 'id="unsubscribe-all"' in page.text
                assert client.post(f"{link.path}?{link.query}").status_code == 200
        sink.messages.clear()
        # Ten runs: the campaign batch path; then a single run's step-by-step path.
        activate(workspace, mail_journey("news2", "newsletter"))
        activate(workspace, mail_journey("hello", None))
        run_worker(ctx, once=True, programme_jobs_every_seconds=None)
    got = [(str(m["Subject"]), str(m["To"])) for m in sink.messages]
    news2 = {to for subject, to in got if subject == "news2"}
    assert len(news2) == n - 3 and not any(a in to for to in news2 for a in leavers)
    assert sum(1 for subject, _ in got if subject == "hello") == n  # email consent untouched
    with workspace.engine.connect() as conn:
        reasons = list(
            conn.execute(
                sa.select(at.sends.c.reason).where(at.sends.c.status == "skipped")
            ).scalars()
        )
        assert reasons == ["unsubscribed from topic newsletter"] * 3
        assert all(has_consent(conn, cid, "email") for cid in range(1, n + 1))


def test_a_topic_name_is_checked_when_the_journey_is_saved() -> None:
    with pytest.raises(JourneyError, match="topic"):
        parse(mail_journey("bad", "News Letter!"))
