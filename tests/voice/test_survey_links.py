"""Survey links: forged, expired and re-used links get a clear page; definitions are versioned."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain.surveys import classify, parse_definition
from kizuna.errors import ValidationError
from kizuna.services import surveys
from kizuna.services.survey_links import issue_link, submit_answer
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.store import voice_tables as vt
from kizuna.web import create_dashboard_app

CSAT: dict[str, Any] = {
    "key": "csat-delivery",
    "kind": "csat",
    "title": {"ja": "配送について", "en": "About your delivery"},
}


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def link(ctx: Context, now: datetime, customer: str = "en1") -> str:
    with ctx.engine.begin() as conn:
        return issue_link(conn, ctx.settings, "csat-delivery", customer, now=now).token


@pytest.fixture
def ws(workspace: Context) -> Context:
    with workspace.engine.begin() as conn:
        add(conn, t.customers, external_id="en1", name="Ann Lee", language="en")
        add(conn, t.customers, external_id="ja1", name="佐藤 一郎", language="ja")
    surveys.save_survey(uow(workspace), CSAT)
    return workspace


def client(ctx: Context) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_dashboard_app(ctx)), base_url="http://testserver"
    )


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


@pytest.mark.anyio
async def test_tampered_expired_and_reused_links_are_refused_in_the_customers_language(
    ws: Context,
) -> None:
    now = datetime.now(UTC)
    good = link(ws, now)
    token_id, survey, customer, expiry, tag = good.split(".")
    other = ".".join([token_id, survey, str(int(customer) + 1), expiry, tag])  # someone else
    later = ".".join([token_id, survey, customer, str(int(expiry) + 86400 * 365), tag])
    async with client(ws) as http:
        ok = await http.get(f"/survey/{good}")
        assert ok.status_code == 200 and "How satisfied were you" in ok.text
        for bad in (other, later, good[:-3], "nonsense", good + "x"):
            page = await http.get(f"/survey/{bad}", headers={"accept-language": "en"})
            assert page.status_code == 400, bad
            assert "This link does not work" in page.text
        # A forged link cannot post an answer either.
        posted = await http.post(
            f"/survey/{other}", data={"csrf_token": csrf(ok.text), "score": "5"}
        )
        assert posted.status_code == 400
        # Expired: issued 40 days ago with a 30-day window, in Japanese for a Japanese customer.
        old = link(ws, now - timedelta(days=40), "ja1")
        page = await http.get(f"/survey/{old}")
        assert page.status_code == 410 and "このアンケートは終了しました" in page.text
        english = await http.get(f"/survey/{old}?lang=en")
        assert english.status_code == 410 and "This survey has closed" in english.text
    with ws.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.survey_answers)).scalar() == 0


@pytest.mark.anyio
async def test_answer_then_edit_within_window_then_refused_after_it(ws: Context) -> None:
    now = datetime.now(UTC)
    token = link(ws, now - timedelta(days=30, hours=1))  # expired an hour ago
    first = submit_answer(uow(ws), token, "5", "Arrived early", now=now - timedelta(days=30))
    assert (first.answer_class, first.edited, first.event_recorded) == ("promoter", False, True)
    second = submit_answer(uow(ws), token, "1", "Box was crushed", now=now - timedelta(hours=2))
    assert (second.answer_class, second.edited, second.event_recorded) == ("detractor", True, True)
    assert second.answer_id == first.answer_id
    with pytest.raises(ValidationError, match="expired"):
        submit_answer(uow(ws), token, "3", "late edit", now=now)
    async with client(ws) as http:
        page = await http.get(f"/survey/{token}", headers={"accept-language": "en"})
        assert page.status_code == 410
    with ws.engine.connect() as conn:
        rows = conn.execute(sa.select(t.survey_answers.c.score, t.survey_answers.c.comment)).all()
        types = conn.execute(sa.select(t.events.c.type).order_by(t.events.c.id)).scalars().all()
    assert [tuple(r) for r in rows] == [(1, "Box was crushed")]
    assert types == ["survey_promoter", "survey_detractor"]


@pytest.mark.anyio
async def test_bad_score_shows_the_form_again_with_a_clear_message(ws: Context) -> None:
    token = link(ws, datetime.now(UTC))
    async with client(ws) as http:
        page = await http.get(f"/survey/{token}")
        bad = await http.post(
            f"/survey/{token}", data={"csrf_token": csrf(page.text), "score": "9"}
        )
        assert bad.status_code == 422
        assert "Please choose a score from 1 to 5" in bad.text


def test_answered_definitions_are_immutable_new_versions_are_added(ws: Context) -> None:
    changed = {**CSAT, "title": {"ja": "配送について（改）", "en": "Your delivery"}}
    assert surveys.save_survey(uow(ws), changed)["outcome"] == "updated"  # nobody answered yet
    token = link(ws, datetime.now(UTC))
    submit_answer(uow(ws), token, "4", None)
    result = surveys.save_survey(uow(ws), {**changed, "title": {"ja": "配送", "en": "Delivery"}})
    assert (result["outcome"], result["version"]) == ("new_version", 2)
    assert (
        surveys.save_survey(uow(ws), {**changed, "title": {"ja": "配送", "en": "Delivery"}})[
            "outcome"
        ]
        == "unchanged"
    )
    with ws.engine.connect() as conn:
        titles = conn.execute(
            sa.select(vt.surveys.c.version, vt.surveys.c.definition).order_by(vt.surveys.c.version)
        ).all()
    assert [(v, d["title"]["en"]) for v, d in titles] == [(1, "Your delivery"), (2, "Delivery")]
    stats = {s.key: s for s in surveys.survey_stats(ws.engine)}["csat-delivery"]
    assert (stats.invited, stats.answered, stats.promoters, stats.version) == (1, 1, 1, 2)


def test_answer_classes_and_definition_errors() -> None:
    assert [classify("nps", s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor", "detractor", "passive", "passive", "promoter", "promoter",
    ]  # fmt: skip
    assert [classify("csat", s) for s in (1, 2, 3, 4, 5)] == [
        "detractor", "detractor", "passive", "promoter", "promoter",
    ]  # fmt: skip
    assert [classify("ces", s) for s in (3, 4, 5, 6)] == [
        "detractor", "passive", "passive", "promoter",
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="between 0 and 10"):
        classify("nps", 11)
    with pytest.raises(ValidationError, match="en wording is missing"):
        parse_definition({"key": "x", "kind": "nps", "title": {"ja": "題"}})
    with pytest.raises(ValidationError, match="/kind"):
        parse_definition({"key": "x", "kind": "stars", "title": {"ja": "a", "en": "b"}})
    parsed = parse_definition({"key": "x", "kind": "ces", "title": {"ja": "a", "en": "b"}})
    assert parsed.text("question", "en").startswith("How easy")
