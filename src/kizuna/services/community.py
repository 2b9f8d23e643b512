"""Community events and user groups: create, register, check in, and measure.

Attendance is written as ``community_activity`` rows of kind
``event_attendance`` — the rows the loyalty matrix's attitude axis, the
segment field ``events_attended`` and the journey trigger ``event_attended``
read — with the external id ``kizuna:attend:<event>:<customer>``, so
checking the same person in twice (a re-sent CSV, a retried API call)
counts once. Registrations go to ``community_registrations`` (who brought
whom) and, for the customer's timeline, to ``community_activity`` as
``event_registration``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain import community as rules
from kizuna.domain import vocabulary as v
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.referrals import take_writer
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import tables as t

_e, _ed, _g, _gm = (
    t.community_events.c,
    at.community_event_details.c,
    at.community_groups.c,
    at.community_group_members.c,
)
_reg, _ca, _cust = at.community_registrations.c, t.community_activity.c, t.customers.c
MAX_CHECKINS = 100_000


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _member(conn: sa.Connection, member_id: str) -> int:
    found = conn.execute(sa.select(_cust.id).where(_cust.external_id == member_id)).scalar()
    if found is None:
        raise NotFound(f"unknown member {member_id!r}: import or create the customer first")
    return int(found)


def _event_id(conn: sa.Connection, event_id: str) -> int:
    found = conn.execute(sa.select(_e.id).where(_e.external_id == event_id)).scalar()
    if found is None:
        raise NotFound(f"no community event {event_id!r}; create it first")
    return int(found)


def _group_id(conn: sa.Connection, group_id: str) -> int:
    found = conn.execute(sa.select(_g.id).where(_g.external_id == group_id)).scalar()
    if found is None:
        raise NotFound(f"no user group {group_id!r}; create it first")
    return int(found)


# -- groups ------------------------------------------------------------------------


def create_group(
    uow: UnitOfWork,
    group_id: str,
    name: str,
    description: str = "",
    online: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if not group_id or len(group_id) > 128 or not name.strip():
        raise ValidationError("a group needs an id (1-128 characters) and a name")
    with uow:
        take_writer(uow.conn)
        uow.conn.execute(
            _insert(uow.conn, at.community_groups)
            .values(
                external_id=group_id,
                name=name.strip()[:300],
                description=description,
                online=online,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        body = group(uow.conn, group_id)
        uow.commit()
    return body


def join_group(
    uow: UnitOfWork,
    group_id: str,
    member_id: str,
    brought_by: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    with uow:
        conn = uow.conn
        take_writer(conn)
        gid, cid = _group_id(conn, group_id), _member(conn, member_id)
        bringer = _member(conn, brought_by) if brought_by else None
        conn.execute(
            _insert(conn, at.community_group_members)
            .values(group_id=gid, customer_id=cid, joined_at=now, brought_by=bringer)
            .on_conflict_do_nothing()
        )
        body = group(conn, group_id)
        uow.commit()
    return body


def group(conn: sa.Connection, group_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(at.community_groups).where(_g.external_id == group_id)).first()
    if row is None:
        raise NotFound(f"no user group {group_id!r}")
    members = conn.execute(sa.select(sa.func.count()).where(_gm.group_id == row.id)).scalar_one()
    return {
        "group_id": row.external_id,
        "name": row.name,
        "description": row.description,
        "online": row.online,
        "members": int(members),
    }


def groups(conn: sa.Connection) -> list[dict[str, Any]]:
    return [
        group(conn, str(g))
        for g in conn.execute(sa.select(_g.external_id).order_by(_g.name)).scalars()
    ]


# -- events --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    name: str
    kind: str
    starts_at: datetime
    online: bool = False
    location: str | None = None
    url: str | None = None
    capacity: int | None = None
    group_id: str | None = None


def create_event(
    uow: UnitOfWork, cmd: NewEvent, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Create an event (online or offline); the same id again returns it unchanged."""
    now = now or datetime.now(UTC)
    if cmd.kind not in v.COMMUNITY_EVENT_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(v.COMMUNITY_EVENT_KINDS)}")
    if not cmd.event_id or len(cmd.event_id) > 128 or not cmd.name.strip():
        raise ValidationError("an event needs an id (1-128 characters) and a name")
    if cmd.starts_at.tzinfo is None:
        raise ValidationError("starts_at: give the time with a timezone offset")
    if cmd.capacity is not None and cmd.capacity < 0:
        raise ValidationError("capacity cannot be negative")
    with uow:
        conn = uow.conn
        take_writer(conn)
        if conn.execute(sa.select(_e.id).where(_e.external_id == cmd.event_id)).first():
            return 200, event(conn, cmd.event_id)
        gid = _group_id(conn, cmd.group_id) if cmd.group_id else None
        new_id = conn.execute(
            sa.insert(t.community_events)
            .values(
                external_id=cmd.event_id,
                name=cmd.name.strip()[:300],
                kind=cmd.kind,
                starts_at=cmd.starts_at,
                location=(cmd.location or ("online" if cmd.online else None)),
                capacity=cmd.capacity,
            )
            .returning(_e.id)
        ).scalar_one()
        conn.execute(
            sa.insert(at.community_event_details).values(
                community_event_id=new_id,
                group_id=gid,
                online=cmd.online,
                url=cmd.url,
                created_at=now,
            )
        )
        body = event(conn, cmd.event_id)
        uow.commit()
    return 201, body


_REGISTERED = (
    sa.select(sa.func.count())
    .where(_reg.community_event_id == _e.id)
    .correlate(t.community_events)
    .scalar_subquery()
)
_ATTENDED = (
    sa.select(sa.func.count(sa.distinct(_ca.customer_id)))
    .where(_ca.community_event_id == _e.id, _ca.kind == "event_attendance")
    .correlate(t.community_events)
    .scalar_subquery()
)
_EVENTS = sa.select(
    t.community_events,
    _ed.online,
    _ed.url,
    _g.external_id.label("group_id"),
    _REGISTERED.label("registered"),
    _ATTENDED.label("attended"),
).select_from(
    t.community_events.outerjoin(
        at.community_event_details, _ed.community_event_id == _e.id
    ).outerjoin(at.community_groups, _g.id == _ed.group_id)
)


def _event_body(row: Any) -> dict[str, Any]:
    return {
        "event_id": row.external_id,
        "name": row.name,
        "kind": row.kind,
        "starts_at": row.starts_at.isoformat(),
        "online": bool(row.online),
        "location": row.location,
        "url": row.url,
        "capacity": row.capacity,
        "group_id": row.group_id,
        "registered": int(row.registered),
        "attended": int(row.attended),
    }


def event(conn: sa.Connection, event_id: str) -> dict[str, Any]:
    row = conn.execute(_EVENTS.where(_e.external_id == event_id)).first()
    if row is None:
        raise NotFound(f"no community event {event_id!r}")
    return _event_body(row)


def events(conn: sa.Connection, limit: int = 500) -> list[dict[str, Any]]:
    """Events, latest first, with registrations and attendance (one query)."""
    query = _EVENTS.order_by(_e.starts_at.desc(), _e.id.desc()).limit(limit)
    return [_event_body(row) for row in conn.execute(query)]


def register(
    uow: UnitOfWork,
    event_id: str,
    member_id: str,
    brought_by: str | None = None,
    now: datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    """Register a member (201), or find them registered already (200); a full event refuses."""
    now = now or datetime.now(UTC)
    with uow:
        conn = uow.conn
        take_writer(conn)
        eid, cid = _event_id(conn, event_id), _member(conn, member_id)
        # The event row is the lock that keeps concurrent registrations within capacity.
        conn.execute(sa.update(t.community_events).where(_e.id == eid).values(capacity=_e.capacity))
        if conn.execute(
            sa.select(_reg.id).where(_reg.community_event_id == eid, _reg.customer_id == cid)
        ).first():
            return 200, event(conn, event_id)
        capacity = conn.execute(sa.select(_e.capacity).where(_e.id == eid)).scalar()
        taken = conn.execute(
            sa.select(sa.func.count()).where(_reg.community_event_id == eid)
        ).scalar_one()
        if capacity is not None and taken >= capacity:
            raise Conflict(f"event {event_id} is full ({capacity} places)")
        bringer = _member(conn, brought_by) if brought_by else None
        _registration(conn, eid, cid, now, bringer)
        body = event(conn, event_id)
        uow.commit()
    return 201, body


def _registration(
    conn: sa.Connection, eid: int, cid: int, at_: datetime, bringer: int | None = None
) -> None:
    conn.execute(
        _insert(conn, at.community_registrations)
        .values(community_event_id=eid, customer_id=cid, registered_at=at_, brought_by=bringer)
        .on_conflict_do_nothing()
    )
    conn.execute(
        _insert(conn, t.community_activity)
        .values(
            external_id=f"kizuna:reg:{eid}:{cid}",
            customer_id=cid,
            kind="event_registration",
            community_event_id=eid,
            occurred_at=at_,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
    )


@dataclass
class CheckInReport:
    checked_in: int = 0
    already: int = 0
    walk_ins: int = 0
    problems: list[str] = field(default_factory=list)


def check_in(
    uow: UnitOfWork,
    event_id: str,
    attendees: list[tuple[str, datetime | None]],
    actor: str,
    now: datetime | None = None,
) -> CheckInReport:
    """Record attendance of (member id, time) pairs; all or nothing, every bad row reported.

    A member who did not register is a walk-in: registered and checked in.
    """
    now = now or datetime.now(UTC)
    if len(attendees) > MAX_CHECKINS:
        raise ValidationError(f"at most {MAX_CHECKINS} check-ins at once")
    report = CheckInReport()
    with uow:
        conn = uow.conn
        take_writer(conn)
        eid = _event_id(conn, event_id)
        wanted = {m for m, _ in attendees}
        known = (
            dict(
                conn.execute(
                    sa.select(_cust.external_id, _cust.id).where(_cust.external_id.in_(wanted))
                ).all()
            )
            if wanted
            else {}
        )
        for n, (member, at_) in enumerate(attendees, start=1):
            if member not in known:
                report.problems.append(f"row {n}: unknown member {member!r}")
            elif at_ is not None and at_.tzinfo is None:
                report.problems.append(f"row {n}: time without timezone")
        if report.problems:
            raise ValidationError(
                f"{len(report.problems)} bad check-in row(s), nothing recorded: "
                + "; ".join(report.problems[:20])
            )
        registered = set(
            conn.execute(
                sa.select(_reg.customer_id).where(_reg.community_event_id == eid)
            ).scalars()
        )
        for member, at_ in attendees:
            cid, when = int(known[member]), at_ or now
            if cid not in registered:
                _registration(conn, eid, cid, when)
                registered.add(cid)
                report.walk_ins += 1
            conn.execute(
                sa.update(at.community_registrations)
                .where(
                    _reg.community_event_id == eid,
                    _reg.customer_id == cid,
                    _reg.checked_in_at.is_(None),
                )
                .values(checked_in_at=when, checked_in_by=actor[:200])
            )
            new = conn.execute(
                _insert(conn, t.community_activity)
                .values(
                    external_id=f"kizuna:attend:{eid}:{cid}",
                    customer_id=cid,
                    kind="event_attendance",
                    community_event_id=eid,
                    occurred_at=when,
                )
                .on_conflict_do_nothing(index_elements=["external_id"])
                .returning(_ca.id)
            ).first()
            if new is not None:
                report.checked_in += 1
            else:
                report.already += 1
        uow.commit()
    return report


def parse_check_in_csv(text: str, timezone: Any) -> list[tuple[str, datetime | None]]:
    """Rows of ``member_id[,checked_in_at]``; a time without offset is in the workspace zone."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "member_id" not in fields:
        raise ValidationError("the check-in file needs a header row with a member_id column")
    rows: list[tuple[str, datetime | None]] = []
    problems: list[str] = []
    for n, raw in enumerate(reader, start=2):
        row = {k.strip(): (val or "").strip() for k, val in raw.items() if k}
        member = row.get("member_id", "")
        if not member:
            problems.append(f"line {n}: member_id is empty")
            continue
        when: datetime | None = None
        if row.get("checked_in_at"):
            try:
                when = datetime.fromisoformat(row["checked_in_at"])
            except ValueError:
                problems.append(
                    f"line {n}: checked_in_at {row['checked_in_at']!r} is not a date-time"
                )
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone)
        rows.append((member, when))
    if problems:
        raise ValidationError(
            f"{len(problems)} bad line(s) in the check-in file, nothing recorded: "
            + "; ".join(problems[:20])
        )
    return rows


# -- metrics -----------------------------------------------------------------------


def metrics(conn: sa.Connection, now: datetime, days: int = 90) -> rules.Metrics:
    """Active members, repeat attendance and members who bring members over ``days``."""
    since = now - timedelta(days=days)
    active = list(
        conn.execute(
            sa.select(_ca.customer_id).where(_ca.occurred_at >= since).distinct()
        ).scalars()
    ) + list(conn.execute(sa.select(_gm.customer_id).where(_gm.joined_at >= since)).scalars())
    attendance = [
        (int(c), int(e))
        for c, e in conn.execute(
            sa.select(_ca.customer_id, _ca.community_event_id).where(
                _ca.kind == "event_attendance", _ca.occurred_at >= since
            )
        )
        if e is not None
    ]
    brought = [
        (int(c), int(b))
        for c, b in conn.execute(
            sa.select(_reg.customer_id, _reg.brought_by).where(
                _reg.brought_by.is_not(None), _reg.registered_at >= since
            )
        )
    ] + [
        (int(c), int(b))
        for c, b in conn.execute(
            sa.select(_gm.customer_id, _gm.brought_by).where(
                _gm.brought_by.is_not(None), _gm.joined_at >= since
            )
        )
    ]
    return rules.metrics(active, attendance, brought)


def registrations(conn: sa.Connection, event_id: str) -> list[dict[str, Any]]:
    eid = _event_id(conn, event_id)
    bringer = sa.alias(t.customers, "bringer")
    rows = conn.execute(
        sa.select(
            _cust.external_id,
            _cust.name,
            _cust.email,
            _reg.registered_at,
            _reg.checked_in_at,
            bringer.c.external_id.label("brought_by"),
        )
        .select_from(
            at.community_registrations.join(t.customers, _cust.id == _reg.customer_id).outerjoin(
                bringer, bringer.c.id == _reg.brought_by
            )
        )
        .where(_reg.community_event_id == eid)
        .order_by(_reg.registered_at, _reg.id)
    ).all()
    return [
        {
            "member_id": r.external_id,
            "name": r.name,
            "email": r.email,
            "registered_at": r.registered_at,
            "checked_in_at": r.checked_in_at,
            "brought_by": r.brought_by,
        }
        for r in rows
    ]
