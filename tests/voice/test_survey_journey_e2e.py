"""A survey from journey to answer to follow-up, with every part real.

A journey with ``send_survey`` emails a signed link through a real SMTP
server (aiosmtpd on loopback); the test follows the link from the received
message through the ASGI app with httpx, answers as a detractor, and checks
the canonical ``survey_answers`` row, the ``survey_detractor`` event and the
follow-up task a second journey creates from that event.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.services import journeys, surveys
from kizuna.services.events import record_event
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.store import voice_tables as vt
from kizuna.web import create_dashboard_app

NPS: dict[str, Any] = {
    "key": "nps-after-support",
    "kind": "nps",
    "title": {"ja": "サポートについてのアンケート", "en": "About our support"},
    "touchpoint": "support_desk",
    "questions": [
        {"id": "fixed", "type": "choice", "label": {"ja": "解決しましたか？", "en": "Was it solved?"},
         "choices": [{"ja": "はい", "en": "Yes"}, {"ja": "いいえ", "en": "No"}]},
    ],
}  # fmt: skip
ASK = {
    "name": "ask-after-support",
    "holdout_percent": 0,
    "trigger": {"event": "contact_resolved"},
    "steps": [{"id": "ask", "action": "send_survey", "survey": "nps-after-support"}],
}
CLOSE_LOOP = {
    "name": "close-the-loop",
    "holdout_percent": 0,
    "trigger": {"event": "survey_detractor"},
    "steps": [{"id": "call", "action": "create_task", "title": "Call {{ name }} back"}],
}
LINK = re.compile(r"http://shop\.example/survey/([A-Za-z0-9_.-]+)")


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def seed(ctx: Context, now: datetime) -> int:
    with ctx.engine.begin() as conn:
        cid = add(conn, t.customers, external_id="c1", name="山田 花子",
                  email="hanako@example.jp", language="ja")  # fmt: skip
        add(conn, t.consents, customer_id=cid, channel="email", granted=True,
            changed_at=now - timedelta(days=100), source="test")  # fmt: skip
    surveys.save_survey(uow(ctx), NPS, "test")
    for doc in (ASK, CLOSE_LOOP):
        journeys.handle_save(journeys.SaveJourney(doc), uow(ctx))
        journeys.set_status(str(doc["name"]), "active", uow(ctx))
    return cid


def work(ctx: Context, port: int, now: datetime) -> None:
    run_worker(
        Context(replace(ctx.settings, smtp_port=port)), once=True, clock=lambda: now,
        worker_id="w1",
    )  # fmt: skip


@pytest.mark.anyio
async def test_send_survey_email_answer_event_and_detractor_task(workspace: Context) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    ctx = Context(replace(workspace.settings, public_url="http://shop.example"))
    cid = seed(ctx, now)
    with ctx.engine.begin() as conn:
        record_event(conn, key="contact:1", customer_id=cid, type="contact_resolved",
                     occurred_at=now - timedelta(minutes=1))  # fmt: skip
    with smtp_sink() as (sink, port):
        work(ctx, port, now)
        work(ctx, port, now + timedelta(minutes=1))  # a second pass never re-sends
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert "hanako@example.jp" in str(mail["To"])
    assert "サポートについてのアンケート" in str(mail["Subject"])
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = LINK.search(body)
    assert match, body
    token = match.group(1)

    app = create_dashboard_app(ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.example"
    ) as http:
        page = await http.get(f"/survey/{token}")
        assert page.status_code == 200
        assert "この店を友人や知人にすすめる" in page.text  # the customer's language
        assert 'name="score" value="10"' in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        form = {
            "csrf_token": csrf.group(1),
            "score": "3",
            "comment": "配送が遅いです",
            "q_fixed": "1",
        }
        done = await http.post(f"/survey/{token}", data=form)
        assert done.status_code == 200 and "ありがとうございました" in done.text
        again = await http.get(f"/survey/{token}")
        assert "すでにご回答いただいています" in again.text
        assert "配送が遅いです" in again.text
        # A re-submission inside the window edits the one answer.
        edit = await http.post(f"/survey/{token}", data={**form, "score": "2"})
        assert edit.status_code == 200 and "更新しました" in edit.text
        # Without the session's CSRF token a POST is refused.
        forged = await http.post(f"/survey/{token}", data={"score": "10"})
        assert forged.status_code == 403

    with ctx.engine.connect() as conn:
        answers = conn.execute(sa.select(t.survey_answers)).all()
        assert len(answers) == 1
        a = answers[0]
        assert (a.customer_id, a.kind, a.score, a.comment, a.survey, a.language) == (
            cid, "nps", 2, "配送が遅いです", "nps-after-support", "ja",
        )  # fmt: skip
        assert a.touchpoint == "support_desk"
        invitation = conn.execute(sa.select(vt.survey_invitations)).one()
        assert (invitation.answer_id, invitation.edits, invitation.extra) == (a.id, 1, {"fixed": 1})
        assert invitation.channel == "email"
        events = conn.execute(
            sa.select(t.events.c.type, t.events.c.properties).where(
                t.events.c.type.like("survey_%")
            )
        ).all()
        assert [e.type for e in events] == ["survey_detractor"]  # the edit kept the class
        assert events[0].properties["score"] == 3

    with smtp_sink() as (_sink, port):
        work(ctx, port, datetime.now(UTC) + timedelta(minutes=1))
    with ctx.engine.connect() as conn:
        tasks = conn.execute(
            sa.select(at.journey_tasks.c.customer_id, at.journey_tasks.c.title)
        ).all()
    assert [(row.customer_id, row.title) for row in tasks] == [(cid, "Call 山田 花子 back")]


REVIEW = {
    "name": "ask-promoters-for-a-review",
    "holdout_percent": 0,
    "trigger": {"event": "survey_promoter"},
    "steps": [
        {"id": "review", "action": "email", "subject": "{{ name }}様、レビューのお願い",
         "text": "よろしければレビューをお書きください。"},
    ],
}  # fmt: skip


def test_a_promoter_answer_sends_a_review_request_once(workspace: Context) -> None:
    from kizuna.services.survey_links import issue_link, submit_answer

    now = datetime.now(UTC) - timedelta(minutes=5)
    cid = seed(workspace, now)
    journeys.handle_save(journeys.SaveJourney(REVIEW), uow(workspace))
    journeys.set_status(str(REVIEW["name"]), "active", uow(workspace))
    with workspace.engine.begin() as conn:
        token = issue_link(conn, workspace.settings, "nps-after-support", cid, now=now).token
    submit_answer(uow(workspace), token, "10", "とても丁寧でした", now=now)
    submit_answer(uow(workspace), token, "9", "丁寧でした", now=now + timedelta(minutes=1))
    with smtp_sink() as (sink, port):
        work(workspace, port, now + timedelta(minutes=2))
        work(workspace, port, now + timedelta(minutes=3))
    assert [str(m["Subject"]).strip() for m in sink.messages] == ["山田 花子様、レビューのお願い"]
