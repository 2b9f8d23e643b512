"""Customer 360 extras through HTTP: points and tier, scores, messages, surveys and tasks,
equal to the service functions, with personal data masked for analysts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.web.test_pages_world import (
    MEMBER,
    World,
    build_world,
    by_testid,
    csv_rows,
    session,
    uow,
)

from kizuna.bootstrap import Context
from kizuna.services import customer_extras as extras
from kizuna.services.customers import customer_pk
from kizuna.services.programme.members import summary
from kizuna.store import tables as t
from kizuna.web.format import Formatter
from kizuna.web.masking import mask_name
from kizuna.web.panels import PANELS, Panel, PanelContext, register_panel

pytestmark = pytest.mark.anyio
EN = Formatter("en_US", "JPY", 0, "Asia/Tokyo")


@pytest.fixture
def world(workspace: Context, tmp_path: Path) -> World:
    return build_world(workspace, tmp_path / "sample")


async def test_the_360_shows_points_scores_messages_surveys_and_tasks(world: World) -> None:
    with uow(world.ctx) as work:
        member = summary(work, MEMBER)
        pk = customer_pk(work.conn, MEMBER)
        scores = extras.latest_scores(work.conn, pk)
        sent = extras.messages(work.conn, pk)
        answers = extras.survey_answers(work.conn, pk)
    assert member["balance"]["available"] > 0 and scores is not None and len(sent) == 2
    async with session(world.app, "marketer") as http:
        page = (await http.get(f"/customers/{MEMBER}")).text
        assert by_testid(page, "points-available") == EN.number(member["balance"]["available"])
        assert by_testid(page, "points-tier") == (member["tier"] or "—")
        assert by_testid(page, "score-clv") == EN.money(scores["clv"])
        assert by_testid(page, "score-p-alive") == EN.percent(scores["p_alive"])
        assert 'data-panel="messages"' in page and "create_task" in page
        name = (
            world.ctx.engine.connect()
            .execute(sa.select(t.customers.c.name).where(t.customers.c.id == pk))
            .scalar_one()
        )
        assert f"Call {name}" in page
        ledger = csv_rows(await http.get(f"/customers/{MEMBER}/panels/points.csv"))
        assert [int(r["points"]) for r in ledger] == [
            e.delta for e in extras.ledger(world.ctx.engine.connect(), pk)
        ]
        msgs = csv_rows(await http.get(f"/customers/{MEMBER}/panels/messages.csv"))
        assert {r["step"] for r in msgs} == {"call", "tag"}
        if answers:
            surveys = csv_rows(await http.get(f"/customers/{MEMBER}/panels/surveys.csv"))
            assert [r["comment"] for r in surveys] == [a["comment"] or "" for a in answers]
        http.cookies.set("kizuna_lang", "ja")
        japanese = (await http.get(f"/customers/{MEMBER}")).text
        assert "ポイントとランク" in japanese and "受信メッセージ" in japanese


async def test_analysts_see_tasks_and_comments_masked(world: World) -> None:
    with uow(world.ctx) as work:
        pk = customer_pk(work.conn, MEMBER)
        name = work.conn.execute(
            sa.select(t.customers.c.name).where(t.customers.c.id == pk)
        ).scalar_one()
    async with session(world.app, "analyst") as http:
        page = (await http.get(f"/customers/{MEMBER}")).text
        assert f"Call {name}" not in page and f"Call {mask_name(name)}" in page
        tasks = csv_rows(await http.get(f"/customers/{MEMBER}/panels/tasks.csv"))
        assert [r["title"] for r in tasks] == [f"Call {mask_name(name)}"]
        # Find a customer with a comment and check it is hidden from the analyst.
        with world.ctx.engine.connect() as conn:
            ext = conn.execute(
                sa.select(t.customers.c.external_id)
                .join(t.survey_answers, t.survey_answers.c.customer_id == t.customers.c.id)
                .where(t.survey_answers.c.comment.is_not(None))
                .limit(1)
            ).scalar_one()
        rows = csv_rows(await http.get(f"/customers/{ext}/panels/surveys.csv"))
        assert rows and all(r["comment"] in ("", "(hidden: personal data)") for r in rows)
        assert any(r["comment"] == "(hidden: personal data)" for r in rows)


async def test_other_areas_can_register_a_panel(world: World) -> None:
    before = list(PANELS)
    register_panel(
        Panel("extra", "pages.panel_tasks", "pages/panel_tasks.html",
              lambda pc: [{"title": f"hello {pc.customer_id}", "done": False, "journey": "j",
                           "created_at": None}], order=5)
    )  # fmt: skip
    try:
        async with session(world.app, "admin") as http:
            page = (await http.get(f"/customers/{MEMBER}")).text
        assert 'data-panel="extra"' in page and f"hello {MEMBER}" in page
        assert page.index('data-panel="extra"') < page.index('data-panel="points"')
    finally:
        PANELS[:] = before


async def test_an_unknown_panel_csv_is_a_404(world: World) -> None:
    async with session(world.app, "admin") as http:
        assert (await http.get(f"/customers/{MEMBER}/panels/nope.csv")).status_code == 404
        assert (await http.get("/customers/NOPE/panels/points.csv")).status_code == 404


async def test_a_failing_panel_is_left_out_and_the_page_still_opens(world: World) -> None:
    before = list(PANELS)

    def broken(pc: PanelContext) -> None:
        raise RuntimeError("bug in another area")

    register_panel(Panel("broken", "pages.panel_tasks", "pages/panel_tasks.html", broken))
    try:
        async with session(world.app, "marketer") as http:
            page = await http.get(f"/customers/{MEMBER}")
        assert page.status_code == 200
        assert 'data-panel="broken"' not in page.text and 'data-panel="points"' in page.text
    finally:
        PANELS[:] = before
