"""A birthday journey end to end: real SMTP, Asia/Tokyo days, consent, hold-out, unsubscribe."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.automation.unsubscribe import handle_unsubscribe
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.journeys import in_holdout
from kizuna.errors import JourneyError, TemplateError, ValidationError
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

BIRTHDAY: dict[str, Any] = {
    "name": "birthday",
    "trigger": {"birthday": {"offset_days": 0}},
    "steps": [
        {"id": "morning", "wait": {"until": "09:00"}},
        {
            "id": "greet",
            "action": "email",
            "subject": "{{ name }}様、お誕生日おめでとうございます",
            "text": "{{ name }}様\nお誕生日おめでとうございます。\n配信停止: {{ unsubscribe_url }}",
            "html": "<p>{{ name }}様、おめでとうございます</p>",
        },
    ],
}


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def tokyo(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)


def seed(ctx: Context) -> dict[str, int]:
    ids: dict[str, int] = {}
    with ctx.engine.begin() as conn:
        for n in range(30):  # 30 consenting customers born on 1 April
            ids[f"c{n}"] = add(conn, t.customers, external_id=f"c{n}", name=f"顧客{n}",
                               email=f"c{n}@example.jp", birthday=date(1980 + n, 4, 1))  # fmt: skip
        ids["unsub"] = add(conn, t.customers, external_id="unsub", name="退会", email="unsub@example.jp",
                           birthday=date(1990, 4, 1))  # fmt: skip
        ids["noconsent"] = add(conn, t.customers, external_id="noconsent", name="未同意",
                               email="noconsent@example.jp", birthday=date(1990, 4, 1))  # fmt: skip
        ids["march31"] = add(conn, t.customers, external_id="march31", name="三月", email="m31@example.jp",
                             birthday=date(1990, 3, 31))  # fmt: skip
        for key, cid in ids.items():
            if key != "noconsent":
                add(conn, t.consents, customer_id=cid, channel="email", granted=key != "unsub",
                    changed_at=tokyo(2024, 1, 1, 0), source="test")  # fmt: skip
    return ids


def work(ctx: Context, port: int, now: datetime) -> None:
    settings = replace(ctx.settings, smtp_port=port)
    run_worker(Context(settings), once=True, clock=lambda: now, worker_id="w1")


def test_birthday_emails_exactly_once_to_eligible_consenting_treated_customers(
    workspace: Context,
) -> None:
    ids = seed(workspace)
    journeys.handle_save(journeys.SaveJourney(BIRTHDAY), uow(workspace))
    journeys.set_status("birthday", "active", uow(workspace))
    holdout = {k for k, cid in ids.items() if in_holdout(cid, "birthday", 10)}
    expected = {k for k in ids if k.startswith("c")} - holdout
    assert 0 < len(holdout & {k for k in ids if k.startswith("c")}) < 10

    with smtp_sink() as (sink, port):
        # 00:30 on 1 April in Tokyo (still 31 March in UTC): runs start and wait for 09:00.
        work(workspace, port, tokyo(2025, 4, 1, 0, 30))
        assert sink.messages == []
        work(workspace, port, tokyo(2025, 4, 1, 9, 5))
        work(workspace, port, tokyo(2025, 4, 1, 9, 6))  # a second pass finds nothing to do
        got = {str(m["To"]).split("<")[1].split("@")[0] for m in sink.messages}
        assert got == expected
        assert len(sink.messages) == len(expected)

        msg = sink.to("c1@example.jp")[0] if "c1" in expected else sink.messages[0]
        assert "お誕生日おめでとうございます" in str(msg["Subject"])
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "お誕生日おめでとうございます" in text
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "様、おめでとうございます" in html
        link = re.search(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
        assert link is not None and link.group(1) in text
        token = parse_qs(urlparse(link.group(1)).query)["token"][0]
        unsubscribed = handle_unsubscribe(token, uow(workspace))
        with pytest.raises(ValidationError):
            handle_unsubscribe(token[:-2] + "xx", uow(workspace))

        stats = journeys.stats("birthday", uow(workspace))
        assert stats["sends"]["email:sent"] == len(expected)
        assert stats["sends"]["email:skipped"] == 2  # unsub and noconsent, checked at send time
        assert stats["sends"].get("email:holdout", 0) == len(holdout - {"march31"})

        # A year later the unsubscribed customer gets nothing; the others get one each.
        before = len(sink.messages)
        work(workspace, port, tokyo(2026, 4, 1, 0, 30))
        work(workspace, port, tokyo(2026, 4, 1, 9, 5))
        second = sink.messages[before:]
        assert len(second) == len(expected) - 1
        name = next(k for k, v in ids.items() if v == unsubscribed)
        assert all(f"{name}@" not in str(m["To"]) for m in second)


def test_pause_holds_runs_and_resume_never_resends(workspace: Context) -> None:
    seed(workspace)
    doc = {**BIRTHDAY, "holdout_percent": 0}
    journeys.handle_save(journeys.SaveJourney(doc), uow(workspace))
    journeys.set_status("birthday", "active", uow(workspace))
    with smtp_sink() as (sink, port):
        work(workspace, port, tokyo(2025, 4, 1, 8, 0))
        journeys.set_status("birthday", "paused", uow(workspace))
        work(workspace, port, tokyo(2025, 4, 1, 9, 30))
        assert sink.messages == []
        journeys.set_status("birthday", "active", uow(workspace))
        work(workspace, port, tokyo(2025, 4, 1, 9, 31))
        sent = len(sink.messages)
        assert sent == 30
        journeys.set_status("birthday", "paused", uow(workspace))
        journeys.set_status("birthday", "active", uow(workspace))
        work(workspace, port, tokyo(2025, 4, 1, 9, 40))
        assert len(sink.messages) == sent
    with workspace.engine.connect() as conn:
        statuses = set(conn.execute(sa.select(at.journey_runs.c.status)).scalars())
    assert statuses == {"completed"}


def test_sandbox_refuses_escapes_and_incomplete_point_grants_are_named(workspace: Context) -> None:
    bad = {**BIRTHDAY, "steps": [{**BIRTHDAY["steps"][1], "subject": "{{ ''.__class__.__mro__ }}"}]}
    with pytest.raises(
        TemplateError, match="/steps/0/subject tried something the template sandbox forbids"
    ):
        journeys.handle_save(journeys.SaveJourney(bad), uow(workspace))
    typo = {**BIRTHDAY, "steps": [{**BIRTHDAY["steps"][1], "text": "{{ nmae }}"}]}
    with pytest.raises(TemplateError, match="'nmae' is undefined"):
        journeys.handle_save(journeys.SaveJourney(typo), uow(workspace))
    from kizuna.automation.templates import render

    with pytest.raises(TemplateError, match="sandbox"):
        render("{{ ''.__class__.__mro__ }}", {})
    with pytest.raises(TemplateError, match="sandbox"):
        render("{{ cycler.__init__.__globals__ }}", {"cycler": object()})
    points = {
        **BIRTHDAY,
        "name": "p",
        "steps": [{"id": "g", "action": "grant_points", "points": 100}],
    }
    with pytest.raises(JourneyError, match="say why the points are given"):
        journeys.handle_save(journeys.SaveJourney(points), uow(workspace))
