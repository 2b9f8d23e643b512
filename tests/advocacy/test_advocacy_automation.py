"""Journeys react to advocacy: invite_ambassador action (once) and the segment fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from tests.advocacy.conftest import T0
from tests.advocacy.seed import seed

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.segments import parse_segment
from kizuna.services import ambassadors, journeys, segments
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import tables as t

DAY = timedelta(days=1)


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def select(ctx: Context, rule: dict[str, Any]) -> list[str]:
    definition = parse_segment({"name": "s", "rule": rule})
    ids = segments.evaluate(definition, uow(ctx), T0 + 50 * DAY)
    with ctx.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(t.customers.c.external_id).where(t.customers.c.id.in_(ids))
            ).scalars()
        )


def test_segment_fields_of_advocacy(ws: Context) -> None:
    seed(ws)
    from kizuna.services import reviews

    reviews.moderate(uow(ws), reviews.Moderate("r1", "approved", "m"), T0)
    assert select(ws, {"field": "ambassador_status", "value": "active"}) == ["A1"]
    assert select(ws, {"field": "referrals_rewarded", "op": "gte", "value": 1}) == ["A1"]
    assert select(ws, {"field": "reviews_approved", "op": "gte", "value": 1}) == ["A2"]


def test_a_rewarded_referral_invites_the_referrer_once(ws: Context) -> None:
    doc = {
        "name": "invite-advocates",
        "trigger": {"event": "referral_rewarded"},
        "steps": [{"id": "invite", "action": "invite_ambassador", "min_score": 0}],
    }
    journeys.handle_save(journeys.SaveJourney(doc), uow(ws))
    journeys.set_status("invite-advocates", "active", uow(ws))
    seed(ws)  # A1 becomes an active ambassador; A1 and A3 are rewarded for a referral
    for _ in range(2):
        run_worker(ws, once=True, clock=lambda: T0 + 61 * DAY, worker_id="w1",
                   programme_jobs_every_seconds=None)  # fmt: skip
    with ws.engine.connect() as conn:
        assert ambassadors.ambassador(conn, "A3")["invited_by"] == "journey:invite-advocates"
        assert ambassadors.ambassador(conn, "A1")["status"] == "active"  # skipped, not re-invited
        invites = conn.execute(
            sa.select(sa.func.count()).where(at.ambassador_transitions.c.to_status == "invited")
        ).scalar_one()
    assert invites == 2  # A1 by staff in the seed, A3 by the journey
