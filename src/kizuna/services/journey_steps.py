"""Journeys as the dashboard lists them, and their per-step statistics.

:func:`kizuna.services.journeys.stats` counts runs and sends for the whole
journey; the journey page also needs them per step (how many runs wait at
each step now, how many sends each step made and with what outcome), so a
marketer sees where customers stop.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.errors import NotFound
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

#: Run statuses that mean the run is still going.
OPEN_STATUSES = ("active",)


def journey_list(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every journey with its status, trigger and run counts (open, done, failed)."""
    j, r = at.journeys.c, at.journey_runs.c
    counts: dict[int, dict[str, int]] = {}
    for journey_id, status, n in conn.execute(
        sa.select(r.journey_id, r.status, sa.func.count()).group_by(r.journey_id, r.status)
    ):
        counts.setdefault(int(journey_id), {})[str(status)] = int(n)
    out = []
    for row in conn.execute(
        sa.select(j.id, j.name, j.status, j.priority, j.definition, j.updated_at).order_by(j.name)
    ):
        by = counts.get(int(row.id), {})
        trigger = (row.definition or {}).get("trigger") or {}
        out.append(
            {
                "name": row.name,
                "status": row.status,
                "priority": row.priority,
                "trigger": next(iter(trigger), ""),
                "trigger_value": next(iter(trigger.values()), "") if trigger else "",
                "updated_at": row.updated_at,
                "runs": sum(by.values()),
                "open": sum(by.get(s, 0) for s in OPEN_STATUSES),
                "completed": by.get("completed", 0),
                "exited": by.get("exited", 0),
                "failed": by.get("dead", 0),
            }
        )
    return out


def step_stats(conn: sa.Connection, name: str) -> list[dict[str, Any]]:
    """For each step id of the journey's definition: runs there now, sends by status.

    ``at_step`` counts open runs whose current step is this one; ``sends``
    maps a send status (sent, skipped, dead, ...) to its count; ``failed``
    counts runs that died at this step.
    """
    j, r, s = at.journeys.c, at.journey_runs.c, at.sends.c
    row = conn.execute(sa.select(j.id, j.definition).where(j.name == name)).first()
    if row is None:
        raise NotFound(f"no journey named {name!r}")
    steps = [str(step.get("id")) for step in (row.definition or {}).get("steps", [])]
    at_step: dict[str, int] = {}
    failed: dict[str, int] = {}
    for step_id, status, n in conn.execute(
        sa.select(r.step_id, r.status, sa.func.count())
        .where(r.journey_id == row.id)
        .group_by(r.step_id, r.status)
    ):
        if status in OPEN_STATUSES:
            at_step[str(step_id)] = at_step.get(str(step_id), 0) + int(n)
        elif status == "dead":
            failed[str(step_id)] = failed.get(str(step_id), 0) + int(n)
    sends: dict[str, dict[str, int]] = {}
    for step_id, status, n in conn.execute(
        sa.select(s.step_id, s.status, sa.func.count())
        .where(s.journey_id == row.id)
        .group_by(s.step_id, s.status)
    ):
        sends.setdefault(str(step_id), {})[str(status)] = int(n)
    known = steps + sorted((set(at_step) | set(sends) | set(failed)) - set(steps) - {"None"})
    return [
        {
            "step": step_id,
            "at_step": at_step.get(step_id, 0),
            "failed": failed.get(step_id, 0),
            "sends": sends.get(step_id, {}),
            "sent": sum(sends.get(step_id, {}).values()),
        }
        for step_id in known
    ]


def activity_mark(conn: sa.Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of what :func:`kizuna.services.measures.report` reads.

    The newest journey run and order ids, the newest measure and journey
    change: four index lookups. While it is unchanged the measures have not
    changed either (an edit of an existing order keeps its id, which is why
    callers also bound how long they trust a cached report).
    """
    return (
        conn.execute(sa.select(sa.func.max(at.journey_runs.c.id))).scalar(),
        conn.execute(sa.select(sa.func.max(t.orders.c.id))).scalar(),
        conn.execute(sa.select(sa.func.max(at.measures.c.created_at))).scalar(),
        conn.execute(sa.select(sa.func.max(at.journeys.c.updated_at))).scalar(),
    )
