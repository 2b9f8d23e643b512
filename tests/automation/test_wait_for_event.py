"""A wait that ends when the customer acts (an order, a system event), or at its limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.automation.runner import parse
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.errors import JourneyError
from kizuna.services import journeys
from kizuna.services.events import record_event
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

T0 = datetime(2025, 6, 10, 1, 0, tzinfo=UTC)


def journey(event: str) -> dict[str, object]:
    return {
        "name": f"wait-{event}", "holdout_percent": 0, "trigger": {"birthday": {}},
        "steps": [
            {"id": "wait", "wait": {"event": event, "days": 7, "timeout": "remind"}},
            {"id": "thanks", "action": "create_task", "title": "thanks {{ name }}"},
            {"id": "end", "exit": True},
            {"id": "remind", "action": "create_task", "title": "remind {{ name }}"},
        ],
    }  # fmt: skip


def work(ctx: Context, at_: datetime) -> None:
    run_worker(ctx, once=True, clock=lambda: at_, programme_jobs_every_seconds=None,
               refresh_segments_every_seconds=None)  # fmt: skip


def tasks(ctx: Context) -> set[str]:
    with ctx.engine.connect() as conn:
        return set(conn.execute(sa.select(at.journey_tasks.c.title)).scalars())


@pytest.mark.parametrize("event", ["order_placed", "coupon_used"])
def test_the_event_moves_the_customer_on_and_silence_times_out(
    workspace: Context, event: str
) -> None:
    birthday = local_date(T0, ZoneInfo("Asia/Tokyo")).replace(year=1990)
    with workspace.engine.begin() as conn:
        buyer = add(conn, t.customers, external_id="a", name="A", birthday=birthday)
        quiet = add(conn, t.customers, external_id="b", name="B", birthday=birthday)
        # Before the wait began: does not count.
        add(conn, t.orders, external_id="old", customer_id=quiet, ordered_at=T0 - timedelta(days=1),
            total_amount=100)  # fmt: skip
    uow = UnitOfWork(workspace.engine, workspace.settings)
    journeys.handle_save(journeys.SaveJourney(journey(event)), uow)
    journeys.set_status(f"wait-{event}", "active", uow)
    work(workspace, T0)
    assert tasks(workspace) == set()
    acted = T0 + timedelta(days=2)
    with workspace.engine.begin() as conn:
        if event == "order_placed":
            add(conn, t.orders, external_id="new", customer_id=buyer, ordered_at=acted,
                total_amount=100)  # fmt: skip
        else:
            record_event(conn, key="c1", customer_id=buyer, type=event, occurred_at=acted)
    later = acted + timedelta(hours=1)
    assert journeys.wake_event_waits(uow, later) == 1
    assert journeys.wake_event_waits(uow, later) == 0  # already due: not woken twice
    work(workspace, later)
    assert tasks(workspace) == {"thanks A"}
    work(workspace, T0 + timedelta(days=6))  # still inside the limit: nothing
    assert tasks(workspace) == {"thanks A"}
    work(workspace, T0 + timedelta(days=7, minutes=1))
    assert tasks(workspace) == {"thanks A", "remind B"}
    with workspace.engine.connect() as conn:
        statuses = set(conn.execute(sa.select(at.journey_runs.c.status)).scalars())
    assert statuses == {"completed"}


def test_an_event_wait_needs_a_limit_and_a_known_timeout_step() -> None:
    base = journey("order_placed")
    no_limit = {**base, "steps": [{"id": "w", "wait": {"event": "order_placed"}}]}
    with pytest.raises(JourneyError, match="needs a limit"):
        parse(no_limit)
    bad_target = {**base, "steps": [{"id": "w", "wait": {"event": "order_placed", "days": 1,
                                                          "timeout": "nowhere"}}]}  # fmt: skip
    with pytest.raises(JourneyError, match="unknown step 'nowhere'"):
        parse(bad_target)
    stray = {**base, "steps": [{"id": "w", "wait": {"days": 1, "timeout": "w"}}]}
    with pytest.raises(JourneyError, match="timeout belongs"):
        parse(stray)
