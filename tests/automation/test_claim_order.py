"""The claim: due runs in (due time, journey priority) order from the run's copy of the priority."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.automation.runner import claim
from kizuna.bootstrap import Context
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

NOW = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)


def journey(name: str, priority: int) -> dict[str, Any]:
    step = {"id": "mail", "action": "email", "subject": name, "text": "{{ name }}"}
    return {
        "name": name,
        "priority": priority,
        "holdout_percent": 0,
        "trigger": {"birthday": {}},
        "steps": [step],
    }


def enrolled(ctx: Context, *docs: dict[str, Any], customers: int = 3) -> UnitOfWork:
    with ctx.engine.begin() as conn:
        for n in range(customers):
            add(conn, t.customers, external_id=f"c{n}", name=f"c{n}", email=f"c{n}@example.jp",
                birthday=date(1990, 6, 1))  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    for doc in docs:
        journeys.handle_save(journeys.SaveJourney(doc), uow)
        journeys.set_status(doc["name"], "active", uow)
        journeys.enroll(doc["name"], uow, NOW)
    return uow


def journey_of(ctx: Context, run_ids: list[int]) -> list[str]:
    r, j = at.journey_runs, at.journeys
    with ctx.engine.connect() as conn:
        names = dict(
            conn.execute(
                sa.select(r.c.id, j.c.name)
                .join(j, j.c.id == r.c.journey_id)
                .where(r.c.id.in_(run_ids))
            ).all()
        )
    return [names[i] for i in run_ids]


def priorities(ctx: Context) -> dict[str, set[int]]:
    r, j = at.journey_runs, at.journeys
    out: dict[str, set[int]] = {}
    with ctx.engine.connect() as conn:
        for name, priority in conn.execute(
            sa.select(j.c.name, r.c.priority).join(j, j.c.id == r.c.journey_id)
        ):
            out.setdefault(name, set()).add(priority)
    return out


def test_runs_carry_their_journeys_priority_and_the_more_important_journey_is_claimed_first(
    workspace: Context,
) -> None:
    enrolled(workspace, journey("newsletter", 200), journey("vip", 10))
    assert priorities(workspace) == {"newsletter": {200}, "vip": {10}}
    first = claim(workspace.engine, "w1", NOW + timedelta(seconds=1), batch=3)
    assert journey_of(workspace, first) == ["vip"] * 3
    rest = claim(workspace.engine, "w2", NOW + timedelta(seconds=1), batch=10)
    assert journey_of(workspace, rest) == ["newsletter"] * 3
    assert not set(first) & set(rest)  # leased runs are not claimed again


def test_a_changed_priority_reaches_the_runs_already_enrolled(workspace: Context) -> None:
    uow = enrolled(workspace, journey("newsletter", 200), journey("vip", 10))
    journeys.handle_save(journeys.SaveJourney(journey("newsletter", 5), replace=True), uow)
    assert priorities(workspace) == {"newsletter": {5}, "vip": {10}}
    first = claim(workspace.engine, "w1", NOW + timedelta(seconds=1), batch=3)
    assert journey_of(workspace, first) == ["newsletter"] * 3


def test_paused_journeys_runs_are_not_claimed_and_resume_where_they_were(
    workspace: Context,
) -> None:
    uow = enrolled(workspace, journey("newsletter", 200), journey("vip", 10))
    journeys.set_status("vip", "paused", uow)
    got = claim(workspace.engine, "w1", NOW + timedelta(seconds=1), batch=10)
    assert journey_of(workspace, got) == ["newsletter"] * 3
    journeys.set_status("vip", "active", uow)
    got = claim(workspace.engine, "w1", NOW + timedelta(seconds=1), batch=10)
    assert journey_of(workspace, got) == ["vip"] * 3


def test_runs_not_yet_due_wait_and_earlier_due_runs_come_first(workspace: Context) -> None:
    enrolled(workspace, journey("vip", 10), journey("newsletter", 200))
    r, j = at.journey_runs, at.journeys
    with workspace.engine.begin() as conn:
        vip = sa.select(j.c.id).where(j.c.name == "vip").scalar_subquery()
        # Held (quiet hours, a wait): the vip runs are due an hour later.
        conn.execute(
            sa.update(r).where(r.c.journey_id == vip).values(due_at=NOW + timedelta(hours=1))
        )
    got = claim(workspace.engine, "w1", NOW + timedelta(minutes=1), batch=10)
    assert journey_of(workspace, got) == ["newsletter"] * 3
    # Two hours on, the first lease has expired: the earlier due time goes
    # first, whatever the priority.
    got = claim(workspace.engine, "w2", NOW + timedelta(hours=2), batch=10)
    assert journey_of(workspace, got) == ["newsletter"] * 3 + ["vip"] * 3


def test_a_large_enrolment_refreshes_the_planners_statistics_on_postgresql(
    workspace: Context,
) -> None:
    """Else PostgreSQL, believing few runs due, sorts every due run on each claim."""
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner keeps no row counts to refresh")
    enrolled(workspace, journey("everyone", 100), customers=journeys.ANALYZE_AFTER)
    with workspace.engine.connect() as conn:
        analysed = conn.execute(
            sa.text(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = 'journey_runs'"
            )
        ).scalar_one()
    assert analysed
