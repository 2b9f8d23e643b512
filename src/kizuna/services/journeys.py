"""Use cases of journeys: save, activate/pause/resume, enrol, dry run, stats.

Enrolment turns triggers into run rows. The instance key (journey, customer,
business key such as ``birthday:2025`` or ``segment:<change id>``) has a
unique constraint, and inserts skip conflicts, so running the enrolment
twice — or on two workers at once — never starts a second run for the same
trigger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.automation.runner import parse
from kizuna.domain.clock import local_date
from kizuna.domain.journeys import (
    Journey,
    anniversary_due,
    birthday_due,
    in_holdout,
    instance_key,
    zone_of,
)
from kizuna.errors import Conflict, JourneyError, NotFound
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

#: An enrolment that starts this many runs refreshes the planner's statistics.
ANALYZE_AFTER = 1000


@dataclass(frozen=True)
class SaveJourney:
    document: dict[str, Any]
    replace: bool = False


def handle_save(command: SaveJourney, uow: UnitOfWork, now: datetime | None = None) -> int:
    """Store a validated journey as a draft (or replace the definition of one)."""
    journey = parse(command.document)
    moment = now or datetime.now(UTC)
    j = at.journeys
    with uow:
        existing = uow.conn.execute(
            sa.select(j.c.id).where(j.c.name == journey.name)
        ).scalar_one_or_none()
        values = {
            "definition": dict(command.document),
            "priority": journey.priority,
            "updated_at": moment,
        }
        if existing is not None:
            if not command.replace:
                raise Conflict(f"journey {journey.name!r} exists; pass --replace to change it")
            uow.conn.execute(sa.update(j).where(j.c.id == existing).values(**values))
            journey_id = int(existing)
            # Runs carry the priority for the worker's index-backed claim
            # (runner.claim): a new priority arbitrates from the next claim on.
            r = at.journey_runs
            uow.conn.execute(
                sa.update(r)
                .where(r.c.journey_id == journey_id, r.c.priority != journey.priority)
                .values(priority=journey.priority)
            )
        else:
            journey_id = int(
                uow.conn.execute(
                    sa.insert(j)
                    .values(name=journey.name, created_at=moment, **values)
                    .returning(j.c.id)
                ).scalar_one()
            )
        uow.commit()
        return journey_id


def _load(uow: UnitOfWork, name: str) -> tuple[int, str, Journey]:
    j = at.journeys
    row = uow.conn.execute(
        sa.select(j.c.id, j.c.status, j.c.definition).where(j.c.name == name)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no journey named {name!r}; see `kizuna journey stats`")
    return int(row.id), str(row.status), parse(row.definition)


def set_status(name: str, status: str, uow: UnitOfWork) -> None:
    """activate / pause / resume. Paused runs keep their place and their ledger,
    so resuming continues exactly where they stopped and never resends."""
    if status not in ("active", "paused"):
        raise JourneyError(f"status must be active or paused, not {status!r}")
    with uow:
        journey_id, _, journey = _load(uow, name)
        values: dict[str, Any] = {"status": status, "updated_at": datetime.now(UTC)}
        current = uow.conn.execute(
            sa.select(at.journeys.c.change_cursor).where(at.journeys.c.id == journey_id)
        ).scalar_one()
        if status == "active" and journey.trigger.kind == "event" and current == 0:
            # An event journey reacts to events from its first activation on,
            # not to the whole history already in the database.
            _, id_col, _, _ = event_source(str(journey.trigger.segment))
            values["change_cursor"] = uow.conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(id_col), 0))
            ).scalar_one()
        uow.conn.execute(
            sa.update(at.journeys).where(at.journeys.c.id == journey_id).values(**values)
        )
        uow.commit()


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    business_key: str


def _candidates(
    conn: sa.Connection, journey: Journey, journey_row: Any, now: datetime, fallback: Any
) -> Iterator[Candidate]:
    trigger = journey.trigger
    c = t.customers
    if trigger.kind == "birthday":
        rows = conn.execute(
            sa.select(c.c.id, c.c.birthday, c.c.timezone).where(c.c.birthday.is_not(None))
        )
        for row in rows:
            today = local_date(now, zone_of(row.timezone, fallback))
            if birthday_due(row.birthday, trigger.offset_days, today):
                yield Candidate(row.id, f"birthday:{today.isoformat()}")
    elif trigger.kind == "anniversary":
        rows = conn.execute(
            sa.select(c.c.id, c.c.signup_at, c.c.timezone).where(c.c.signup_at.is_not(None))
        )
        for row in rows:
            tz = zone_of(row.timezone, fallback)
            today = local_date(now, tz)
            years = anniversary_due(local_date(row.signup_at, tz), trigger.offset_days, today)
            if years:
                yield Candidate(row.id, f"anniversary:{years}")
    elif trigger.kind == "event":
        source, id_col, when_col, where = event_source(str(trigger.segment))
        for event_row in conn.execute(
            sa.select(id_col, source.c.customer_id)
            .where(*where, id_col > journey_row.change_cursor, when_col <= now)
            .order_by(id_col)
        ):
            yield Candidate(event_row.customer_id, f"{trigger.segment}:{event_row.id}")
    elif trigger.kind in ("segment_entry", "segment_exit"):
        seg = conn.execute(
            sa.select(at.segments.c.id).where(at.segments.c.name == trigger.segment)
        ).scalar_one_or_none()
        if seg is None:
            raise NotFound(
                f"journey {journey.name!r} triggers on segment {trigger.segment!r}, which does not exist"
            )
        ch = at.segment_changes
        change = "entered" if trigger.kind == "segment_entry" else "exited"
        for change_row in conn.execute(
            sa.select(ch.c.id, ch.c.customer_id)
            .where(
                ch.c.segment_id == seg, ch.c.change == change, ch.c.id > journey_row.change_cursor
            )
            .order_by(ch.c.id)
        ):
            yield Candidate(change_row.customer_id, f"segment:{change_row.id}")
    elif trigger.kind == "days_after_last_purchase":
        o = t.orders
        last = (
            sa.select(o.c.customer_id, sa.func.max(o.c.ordered_at).label("last"))
            .where(o.c.status == "completed")
            .group_by(o.c.customer_id)
            .subquery()
        )
        for last_row in conn.execute(
            sa.select(last.c.customer_id, last.c.last, c.c.timezone).join(
                c, c.c.id == last.c.customer_id
            )
        ):
            tz = zone_of(last_row.timezone, fallback)
            last_at = last_row.last if last_row.last.tzinfo else last_row.last.replace(tzinfo=UTC)
            if local_date(last_at, tz) + timedelta(days=trigger.offset_days) == local_date(now, tz):
                yield Candidate(last_row.customer_id, f"after_purchase:{last_at.isoformat()}")


def event_source(event: str) -> tuple[sa.Table, Any, Any, list[Any]]:
    """The table, id column, time column and filter behind an event trigger."""
    if event == "order_placed":
        o = t.orders
        return o, o.c.id, o.c.ordered_at, [o.c.status == "completed"]
    if event == "survey_answered":
        s = t.survey_answers
        return s, s.c.id, s.c.answered_at, []
    if event == "event_attended":
        ca = t.community_activity
        return ca, ca.c.id, ca.c.occurred_at, [ca.c.kind == "event_attendance"]
    e = t.events
    return e, e.c.id, e.c.occurred_at, [e.c.type == event, e.c.customer_id.is_not(None)]


def _insert_ignoring_duplicates(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    r = at.journey_runs
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(r).on_conflict_do_nothing(
            index_elements=["customer_id", "journey_id", "instance_key"]
        )
    else:
        stmt = sqlite.insert(r).on_conflict_do_nothing(
            index_elements=["customer_id", "journey_id", "instance_key"]
        )
    for i in range(0, len(rows), 1000):
        conn.execute(stmt, rows[i : i + 1000])


def enroll(name: str, uow: UnitOfWork, now: datetime | None = None) -> int:
    """Start runs for every customer the trigger fires for now; returns how many were new."""
    moment = now or datetime.now(UTC)
    r = at.journey_runs
    with uow:
        journey_id, status, journey = _load(uow, name)
        if status != "active":
            return 0
        row = uow.conn.execute(sa.select(at.journeys).where(at.journeys.c.id == journey_id)).one()
        active = set(
            uow.conn.execute(
                sa.select(r.c.customer_id).where(
                    r.c.journey_id == journey_id, r.c.status == "active"
                )
            ).scalars()
        )
        before = _count_runs(uow.conn, journey_id)
        first = journey.steps[0].id
        rows = []
        cursor = row.change_cursor
        for cand in _candidates(uow.conn, journey, row, moment, uow.settings.tz):
            if journey.trigger.kind in ("segment_entry", "segment_exit", "event"):
                cursor = max(cursor, int(cand.business_key.rsplit(":", 1)[1]))
            if cand.customer_id in active:
                continue  # one run at a time per customer and journey
            key = "once" if journey.reentry == "once" else cand.business_key
            rows.append(
                {
                    "customer_id": cand.customer_id, "journey_id": journey_id,
                    "instance_key": instance_key(journey.name, cand.customer_id, key), "status": "active",
                    "holdout": in_holdout(cand.customer_id, journey.name, journey.holdout_percent),
                    "step_id": first, "due_at": moment, "started_at": moment,
                    "priority": row.priority,
                }
            )  # fmt: skip
            active.add(cand.customer_id)
        _insert_ignoring_duplicates(uow.conn, rows)
        if cursor != row.change_cursor:
            uow.conn.execute(
                sa.update(at.journeys)
                .where(at.journeys.c.id == journey_id)
                .values(change_cursor=cursor)
            )
        started = _count_runs(uow.conn, journey_id) - before
        uow.commit()
        if started >= ANALYZE_AFTER and uow.dialect == "postgresql":
            # The worker's claim reads due runs in index order; with statistics
            # from before a large enrolment, PostgreSQL believes few runs are
            # due and sorts all of them on every claim until autovacuum
            # catches up (up to a minute or more). ANALYZE samples a bounded
            # number of rows, so it costs about the same at any table size.
            uow.conn.exec_driver_sql("ANALYZE journey_runs")
            uow.commit()
        return started


def _count_runs(conn: sa.Connection, journey_id: int) -> int:
    r = at.journey_runs
    return int(
        conn.execute(sa.select(sa.func.count()).where(r.c.journey_id == journey_id)).scalar_one()
    )


def enroll_all(uow: UnitOfWork, now: datetime | None = None) -> int:
    with uow:
        names = list(
            uow.conn.execute(
                sa.select(at.journeys.c.name).where(at.journeys.c.status == "active")
            ).scalars()
        )
    return sum(enroll(name, uow, now) for name in names)


@dataclass(frozen=True)
class DryRunEntry:
    customer_id: int
    external_id: str
    holdout: bool
    actions: list[str]


def dry_run(
    document: dict[str, Any], uow: UnitOfWork, now: datetime | None = None
) -> list[DryRunEntry]:
    """Who would enter today and which actions they would get, writing nothing."""
    journey = parse(document)
    moment = now or datetime.now(UTC)
    actions = [f"{s.id}:{s.params['action']}" for s in journey.steps if s.kind == "action"]
    with uow:
        row = uow.conn.execute(
            sa.select(at.journeys).where(at.journeys.c.name == journey.name)
        ).one_or_none()
        fake = row if row is not None else type("Row", (), {"change_cursor": 0})()
        out = []
        for cand in _candidates(uow.conn, journey, fake, moment, uow.settings.tz):
            ext = uow.conn.execute(
                sa.select(t.customers.c.external_id).where(t.customers.c.id == cand.customer_id)
            ).scalar_one()
            hold = in_holdout(cand.customer_id, journey.name, journey.holdout_percent)
            out.append(DryRunEntry(cand.customer_id, ext, hold, [] if hold else actions))
        return out


def stats(name: str, uow: UnitOfWork) -> dict[str, Any]:
    """Runs by status and group, and ledger rows by action and status."""
    r, s = at.journey_runs, at.sends
    with uow:
        journey_id, status, _ = _load(uow, name)
        runs = {
            f"{'holdout' if h else 'treated'}:{st}": int(n)
            for h, st, n in uow.conn.execute(
                sa.select(r.c.holdout, r.c.status, sa.func.count())
                .where(r.c.journey_id == journey_id)
                .group_by(r.c.holdout, r.c.status)
            )
        }
        sends = {
            f"{a}:{st}": int(n)
            for a, st, n in uow.conn.execute(
                sa.select(s.c.action, s.c.status, sa.func.count())
                .where(s.c.journey_id == journey_id)
                .group_by(s.c.action, s.c.status)
            )
        }
        return {"journey": name, "status": status, "runs": runs, "sends": sends}


def wake_event_waits(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Make runs waiting for an event due now when the customer has done it; returns how many.

    One set-based UPDATE per event-wait step of each active journey, so a
    hundred thousand customers waiting for their next order cost one query
    per minute, not one turn each. The runner decides what happened.
    """
    moment = now or datetime.now(UTC)
    r = at.journey_runs
    woken = 0
    with uow:
        active = uow.conn.execute(
            sa.select(at.journeys.c.id, at.journeys.c.definition).where(
                at.journeys.c.status == "active"
            )
        ).all()
        for journey_id, definition in active:
            for step in parse(definition).steps:
                if step.kind != "wait" or "event" not in step.params:
                    continue
                source, _, when, where = event_source(str(step.params["event"]))
                happened = sa.exists().where(
                    source.c.customer_id == r.c.customer_id,
                    when > r.c.waiting_since,
                    when <= moment,
                    *where,
                )
                woken += uow.conn.execute(
                    sa.update(r)
                    .where(
                        r.c.journey_id == journey_id,
                        r.c.step_id == step.id,
                        r.c.status == "active",
                        r.c.waiting.is_(True),
                        r.c.due_at > moment,
                        happened,
                    )
                    .values(due_at=moment)
                ).rowcount
        uow.commit()
    return woken
