"""Community: events and groups, registration, check-in by list and CSV, and the metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from tests.advocacy.conftest import T0, customer

from kizuna.bootstrap import Context
from kizuna.domain.community import metrics as pure_metrics
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services import community, journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

DAY = timedelta(days=1)


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def _event(ctx: Context, ext: str = "ev1", **kw: object) -> None:
    cmd = community.NewEvent(ext, "お茶会 Tea meetup", "meetup", T0, **kw)  # type: ignore[arg-type]
    community.create_event(uow(ctx), cmd, T0)


def test_pure_metrics_from_known_facts() -> None:
    m = pure_metrics(
        active=[1, 2, 3, 3, 4],
        attendance=[(1, 10), (1, 11), (2, 10), (3, 10), (3, 12), (3, 12)],
        brought_by=[(2, 1), (4, 1), (5, 3), (1, 1)],
    )
    assert (m.active_members, m.attendees, m.repeat_attendees) == (4, 3, 2)
    assert m.repeat_rate == pytest.approx(2 / 3)
    assert (m.bringers, m.brought) == (2, 3)


def test_online_event_registration_capacity_and_bringers(ws: Context) -> None:
    for ext in ("a", "b", "c"):
        customer(ws, ext)
    community.create_group(uow(ws), "g1", "Tea lovers", online=True, now=T0)
    _event(ws, online=True, url="https://meet.example/tea", capacity=2, group_id="g1")
    assert community.register(uow(ws), "ev1", "a", now=T0)[0] == 201
    assert community.register(uow(ws), "ev1", "a", now=T0)[0] == 200
    status, body = community.register(uow(ws), "ev1", "b", brought_by="a", now=T0)
    assert (status, body["registered"], body["online"], body["group_id"]) == (201, 2, True, "g1")
    with pytest.raises(Conflict, match="full"):
        community.register(uow(ws), "ev1", "c", now=T0)
    with pytest.raises(NotFound):
        community.register(uow(ws), "nope", "c", now=T0)


def test_check_in_writes_attendance_the_loyalty_matrix_and_journeys_read(ws: Context) -> None:
    a, b = customer(ws, "a"), customer(ws, "b")
    _event(ws)
    community.register(uow(ws), "ev1", "a", now=T0 - DAY)
    report = community.check_in(uow(ws), "ev1", [("a", None), ("b", T0 + DAY)], "desk", T0)
    assert (report.checked_in, report.walk_ins, report.already) == (2, 1, 0)
    again = community.check_in(uow(ws), "ev1", [("a", None)], "desk", T0)  # a re-sent list
    assert (again.checked_in, again.already) == (0, 1)
    table, _id, _at, where = journeys.event_source("event_attended")
    with ws.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.customer_id).where(*where)).scalars().all()
        assert sorted(rows) == sorted([a, b])
        kinds = conn.execute(
            sa.select(t.community_activity.c.kind, sa.func.count()).group_by(
                t.community_activity.c.kind
            )
        ).all()
    assert dict(kinds) == {"event_registration": 2, "event_attendance": 2}
    with ws.engine.connect() as conn:
        assert community.event(conn, "ev1")["attended"] == 2


def test_csv_check_in_reports_every_bad_row_and_records_nothing(ws: Context) -> None:
    customer(ws, "a")
    customer(ws, "b")
    _event(ws)
    bad = "member_id,checked_in_at\na,2026-03-02T19:00\nzz,\nb,yesterday\n"
    with pytest.raises(ValidationError, match="line 4"):
        community.parse_check_in_csv(bad, ws.settings.tz)
    rows = community.parse_check_in_csv("\ufeffmember_id\na\nzz\nghost\n", ws.settings.tz)
    with pytest.raises(ValidationError) as info:
        community.check_in(uow(ws), "ev1", rows, "desk", T0)
    assert "'zz'" in str(info.value) and "'ghost'" in str(info.value)
    with ws.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.community_activity)).scalar() == 0
        )
    good = community.parse_check_in_csv(
        "member_id,checked_in_at\na,2026-03-02T19:00\nb,\n", ws.settings.tz
    )
    assert good[0][1] is not None and good[0][1].utcoffset() == timedelta(hours=9)
    assert community.check_in(uow(ws), "ev1", good, "desk", T0).checked_in == 2


def test_community_metrics_from_the_database(ws: Context) -> None:
    for ext in ("a", "b", "c", "d"):
        customer(ws, ext)
    _event(ws, "ev1")
    _event(ws, "ev2")
    community.create_group(uow(ws), "g1", "Tea lovers", now=T0)
    community.register(uow(ws), "ev1", "b", brought_by="a", now=T0)
    community.join_group(uow(ws), "g1", "d", brought_by="a", now=T0)
    community.check_in(uow(ws), "ev1", [("a", T0), ("b", T0), ("c", T0)], "desk", T0)
    community.check_in(uow(ws), "ev2", [("a", T0 + DAY)], "desk", T0)
    with ws.engine.connect() as conn:
        m = community.metrics(conn, T0 + 2 * DAY)
    assert (m.active_members, m.attendees, m.repeat_attendees) == (4, 3, 1)
    assert (m.bringers, m.brought) == (1, 2)
