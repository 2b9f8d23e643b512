"""Read queries behind the Customer 360 panels: points, scores, messages, surveys, tasks.

Each function takes a connection and the customer's internal id and returns
plain rows, newest first, so a panel of the dashboard and its CSV export read
the same thing. Points come from the programme's own summary
(:func:`kizuna.services.programme.members.summary`) plus the lots and ledger
entries that explain it; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.store import automation_tables as at
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores, scoring_runs

#: Rows a 360 panel shows; its CSV has them all.
PANEL_ROWS = 20


@dataclass(frozen=True)
class Lot:
    earned_at: datetime
    points: int
    remaining: int
    state: str
    available_at: datetime
    expires_at: datetime | None
    source: str


@dataclass(frozen=True)
class LedgerRow:
    id: int
    at: datetime
    kind: str
    delta: int
    reason: str
    source: str
    actor: str | None


def open_lots(conn: sa.Connection, customer_id: int, limit: int | None = None) -> list[Lot]:
    """Lots that still hold points, soonest expiry first (never-expiring last)."""
    lt = pt.point_lots.c
    q = (
        sa.select(
            lt.earned_at,
            lt.points,
            lt.remaining,
            lt.state,
            lt.available_at,
            lt.expires_at,
            lt.source,
        )
        .where(
            lt.customer_id == customer_id, lt.remaining > 0, lt.state.in_(("pending", "available"))
        )
        .order_by(lt.expires_at.is_(None), lt.expires_at, lt.id)
    )
    if limit is not None:
        q = q.limit(limit)
    return [Lot(*r) for r in conn.execute(q)]


def ledger(conn: sa.Connection, customer_id: int, limit: int | None = None) -> list[LedgerRow]:
    """Ledger entries, newest first; ``delta`` is the change of spendable + pending points."""
    e = pt.ledger_entries.c
    q = (
        sa.select(
            e.id,
            e.at,
            e.kind,
            (e.available + e.pending).label("delta"),
            e.reason,
            e.source,
            e.actor,
        )
        .where(e.customer_id == customer_id)
        .order_by(e.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    return [LedgerRow(*r) for r in conn.execute(q)]


def latest_scores(conn: sa.Connection, customer_id: int) -> dict[str, Any] | None:
    """The customer's row of the newest complete scoring run, with the run's version and date."""
    run = (
        sa.select(scoring_runs.c.id, scoring_runs.c.version, scoring_runs.c.as_of)
        .where(scoring_runs.c.status == "complete")
        .order_by(scoring_runs.c.version.desc())
        .limit(1)
    )
    found = conn.execute(run).first()
    if found is None:
        return None
    row = conn.execute(
        sa.select(customer_scores).where(
            customer_scores.c.run_id == found.id, customer_scores.c.customer_id == customer_id
        )
    ).first()
    if row is None:
        return None
    return {**row._mapping, "run_version": found.version, "run_as_of": found.as_of}


def messages(
    conn: sa.Connection, customer_id: int, limit: int | None = None
) -> list[dict[str, Any]]:
    """What journeys sent (or tried to send) this customer, from the send ledger."""
    s, j = at.sends, at.journeys
    q = (
        sa.select(
            s.c.created_at,
            s.c.done_at,
            j.c.name.label("journey"),
            s.c.step_id,
            s.c.action,
            s.c.status,
            s.c.reason,
            s.c.marketing,
        )
        .select_from(s.join(j, j.c.id == s.c.journey_id))
        .where(s.c.customer_id == customer_id)
        .order_by(s.c.created_at.desc(), s.c.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def survey_answers(
    conn: sa.Connection, customer_id: int, limit: int | None = None
) -> list[dict[str, Any]]:
    """Survey answers with their comments (free text the person wrote: personal data)."""
    a = t.survey_answers.c
    q = (
        sa.select(a.answered_at, a.survey, a.kind, a.score, a.comment, a.touchpoint)
        .where(a.customer_id == customer_id)
        .order_by(a.answered_at.desc(), a.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def tasks(conn: sa.Connection, customer_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    """Tasks journeys created for staff about this customer, open ones first."""
    k, r, j = at.journey_tasks, at.journey_runs, at.journeys
    q = (
        sa.select(k.c.created_at, k.c.title, k.c.done, j.c.name.label("journey"), k.c.step_id)
        .select_from(k.join(r, r.c.id == k.c.run_id).join(j, j.c.id == r.c.journey_id))
        .where(k.c.customer_id == customer_id)
        .order_by(k.c.done, k.c.created_at.desc(), k.c.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]
