"""Customer 360: the profile and the merged, paged timeline on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.errors import NotFound, ValidationError
from kizuna.services.customers import TIMELINE_KINDS, Customer360, customer_360
from kizuna.store import tables as t

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def add_customer(conn: sa.Connection, external_id: str, **values: Any) -> int:
    return add(conn, t.customers, external_id=external_id, **values)


def day(n: int, hours: int = 0) -> datetime:
    return T0 + timedelta(days=n, hours=hours)


def seed_full_history(conn: sa.Connection) -> None:
    """C-1 has one item of every kind, on days 1..12; C-9 is noise that must not show."""
    account = add(conn, t.accounts, external_id="A-1", name="Acme KK")
    c1 = add_customer(
        conn, "C-1", name="Sato Hanako", email="hanako@example.jp", birthday=datetime(1990, 4, 1).date(),
        gender="female", region="Tokyo", language="ja", signup_at=day(0), account_id=account,
        attributes={"tier": "gold"},
    )  # fmt: skip
    c2 = add_customer(conn, "C-2")
    c3 = add_customer(conn, "C-3")
    c9 = add_customer(conn, "C-9")
    product = add(conn, t.products, external_id="P-1", name="Green tea", price=1200)
    add(conn, t.consents, customer_id=c1, channel="email", granted=True, changed_at=day(0, 1),
        source="signup_form")  # fmt: skip
    add(conn, t.consents, customer_id=c1, channel="sms", granted=False, changed_at=day(0, 2),
        source="unsubscribe_link")  # fmt: skip
    o1 = add(conn, t.orders, external_id="O-1", customer_id=c1, ordered_at=day(1),
             total_amount=10_000, channel="online")  # fmt: skip
    for line_no, amount in ((1, 6_000), (2, 4_000)):
        add(conn, t.order_lines, order_id=o1, customer_id=c1, line_no=line_no,
            product_id=product, quantity=1, unit_price=amount, amount=amount)  # fmt: skip
    add(conn, t.returns, external_id="R-1", order_id=o1, customer_id=c1, line_no=2, quantity=1,
        refund_amount=4_000, returned_at=day(2), reason="damaged")  # fmt: skip
    add(conn, t.events, external_id="E-1", customer_id=c1, type="page_view", occurred_at=day(3),
        page="/tea/green", dwell_seconds=42, properties={"ref": "mail"})  # fmt: skip
    add(conn, t.survey_answers, external_id="S-1", customer_id=c1, kind="nps", score=9,
        comment="Lovely tea", answered_at=day(4))  # fmt: skip
    add(conn, t.contacts, external_id="K-1", customer_id=c1, touchpoint="call_centre",
        topic="Delivery", opened_at=day(5), resolved=True, resolved_at=day(5, 2))  # fmt: skip
    meetup = add(conn, t.community_events, external_id="CE-1", name="Tokyo Meetup", kind="meetup",
                 starts_at=day(6))  # fmt: skip
    add(conn, t.community_activity, external_id="CA-1", customer_id=c1, kind="event_attendance",
        community_event_id=meetup, occurred_at=day(6))  # fmt: skip
    add(conn, t.trainings, external_id="TR-1", customer_id=c1, course="Tea basics",
        kind="course", enrolled_at=day(7), completed_at=day(8), score=88)  # fmt: skip
    add(conn, t.reviews, external_id="RV-1", customer_id=c1, product_id=product, kind="review",
        rating=5, title="Best sencha", posted_at=day(8, 1))  # fmt: skip
    add(conn, t.referrals, external_id="RF-1", referrer_id=c1, referee_id=c2, code="HANAKO",
        referred_at=day(9), status="rewarded")  # fmt: skip
    add(conn, t.referrals, external_id="RF-2", referrer_id=c3, referee_id=c1, code="C3",
        referred_at=day(10), status="qualified")  # fmt: skip
    add(conn, t.orders, external_id="O-2", customer_id=c1, ordered_at=day(11),
        total_amount=7_000, status="cancelled")  # fmt: skip
    add(conn, t.survey_answers, external_id="S-2", customer_id=c1, kind="csat", score=4,
        answered_at=day(12))  # fmt: skip
    add(conn, t.events, external_id="E-9", customer_id=c9, type="login", occurred_at=day(5))
    add(conn, t.orders, external_id="O-9", customer_id=c9, ordered_at=day(5), total_amount=1)


def show(workspace: Context, customer: str = "C-1", **kwargs: Any) -> Customer360:
    return customer_360(workspace.engine, workspace.settings, customer, **kwargs)


def test_timeline_merges_every_kind_newest_first(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_full_history(conn)

    result = show(workspace)

    kinds = [item.kind for item in result.timeline]
    assert kinds == [
        "survey", "order", "referral_received", "referral_made", "review", "training",
        "community", "contact", "survey", "event", "return", "order", "consent", "consent",
    ]  # fmt: skip
    assert set(TIMELINE_KINDS) <= set(kinds)
    instants = [item.at for item in result.timeline]
    assert instants == sorted(instants, reverse=True)
    assert all(
        item.at.tzinfo is not None and item.at.utcoffset() == timedelta(0)
        for item in result.timeline
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    assert all(
        item.local_at == item.at and item.local_at.tzinfo == tokyo for item in result.timeline
    )
    assert result.next_before is None and not result.has_more

    by_id = {next(iter(item.detail.values())): item for item in result.timeline if item.detail}
    first_order = by_id["O-1"]
    assert first_order.detail["lines"] == 2
    assert first_order.detail["total_amount"] == 10_000
    assert first_order.title == "Order O-1 · ¥10,000 · 2 lines"
    assert "cancelled" in by_id["O-2"].title
    assert by_id["R-1"].detail["order_id"] == "O-1"
    assert by_id["S-1"].detail == {
        "answer_id": "S-1", "survey": None, "kind": "nps", "score": 9, "comment": "Lovely tea",
        "language": None, "touchpoint": None,
    }  # fmt: skip
    assert by_id["K-1"].detail["resolved"] is True
    assert by_id["CA-1"].detail["event_name"] == "Tokyo Meetup"
    assert "Tokyo Meetup" in by_id["CA-1"].title
    assert by_id["RV-1"].detail["product_id"] == "P-1"
    assert by_id["RF-1"].detail["referee_id"] == "C-2"
    assert by_id["RF-2"].detail["referrer_id"] == "C-3"
    assert by_id["RF-2"].title == "Referred by C-3 (qualified)"
    assert by_id["E-1"].detail["properties"] == {"ref": "mail"}


def test_profile_has_account_consents_and_totals_net_of_returns(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_full_history(conn)

    profile = show(workspace).profile

    assert profile.customer_id == "C-1"
    assert profile.account_id == "A-1" and profile.account_name == "Acme KK"
    assert profile.attributes == {"tier": "gold"}
    assert profile.signup_at == day(0)
    assert {ch: c.granted for ch, c in profile.consents.items()} == {"email": True, "sms": False}
    assert profile.consents["sms"].source == "unsubscribe_link"
    stats = profile.stats
    assert (stats.orders, stats.cancelled_orders) == (1, 1)
    assert (stats.gross_revenue, stats.refunds, stats.revenue) == (10_000, 4_000, 6_000)
    assert stats.first_order_at == stats.last_order_at == day(1)
    assert stats.surveys_answered == 2
    assert (stats.latest_nps, stats.latest_nps_at) == (9, day(4))
    assert (stats.events, stats.contacts, stats.community_activities) == (1, 1, 1)
    assert (stats.trainings, stats.reviews, stats.referrals_made) == (1, 1, 1)


def test_profile_lists_every_customer_column() -> None:
    from dataclasses import fields

    from kizuna.services.customers import CustomerProfile

    names = {f.name for f in fields(CustomerProfile)}
    internal = {"id", "external_id", "import_run_id"}
    assert {c.name for c in t.customers.columns} - internal <= names


def test_to_dict_is_plain_json(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_full_history(conn)

    data = json.loads(json.dumps(show(workspace, limit=3).to_dict()))

    assert data["customer"]["customer_id"] == "C-1"
    assert data["customer"]["birthday"] == "1990-04-01"
    assert data["customer"]["consents"]["email"]["granted"] is True
    assert data["customer"]["stats"]["revenue"] == 6_000
    assert [i["kind"] for i in data["timeline"]] == ["survey", "order", "referral_received"]
    assert data["timeline"][0]["local_at"] == "2025-01-13T09:00:00+09:00"
    assert data["next_before"] == "2025-01-11T00:00:00+00:00"
    assert (data["currency"], data["timezone"]) == ("JPY", "Asia/Tokyo")


def seed_busy_customer(conn: sa.Connection) -> int:
    """40 events a minute apart, 6 more at one instant, orders sharing instants with events."""
    pk = add_customer(conn, "BUSY")
    rows = [
        {"external_id": f"E-{i:03d}", "customer_id": pk, "type": "page_view",
         "occurred_at": T0 + timedelta(minutes=i)}
        for i in range(40)
    ]  # fmt: skip
    rows += [
        {"external_id": f"TIE-{i}", "customer_id": pk, "type": "app_open",
         "occurred_at": T0 + timedelta(minutes=20, seconds=30)}
        for i in range(6)
    ]  # fmt: skip
    conn.execute(sa.insert(t.events), rows)
    for i in (5, 6, 7, 33):
        add(conn, t.orders, external_id=f"O-{i}", customer_id=pk,
            ordered_at=T0 + timedelta(minutes=i), total_amount=100 * i)  # fmt: skip
    return pk


def ident(item: Any) -> str:
    return str(next(iter(item.detail.values())))


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
def test_paging_with_before_shows_every_item_once_in_order(workspace: Context, limit: int) -> None:
    with workspace.engine.begin() as conn:
        seed_busy_customer(conn)

    seen: list[Any] = []
    before = None
    for _ in range(100):
        page = show(workspace, "BUSY", limit=limit, before=before)
        seen.extend(page.timeline)
        if not page.has_more:
            break
        assert page.timeline[-1].at == page.next_before
        before = page.next_before
    else:
        pytest.fail("paging did not finish")

    ids = [ident(item) for item in seen]
    assert len(ids) == len(set(ids)) == 50
    instants = [item.at for item in seen]
    assert instants == sorted(instants, reverse=True)


def test_a_page_never_splits_one_instant(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_busy_customer(conn)
    tie = T0 + timedelta(minutes=20, seconds=30)

    # 20 items are newer than the six tied events; a page of 21 would cut through
    # them, so it stops before them.
    page = show(workspace, "BUSY", limit=21)
    assert len(page.timeline) == 20 and page.next_before == T0 + timedelta(minutes=21)
    # More tied items than the limit: the page holds all of them.
    page = show(workspace, "BUSY", limit=2, before=page.next_before)
    assert [ident(i) for i in page.timeline] == [f"TIE-{i}" for i in range(5, -1, -1)]
    assert page.next_before == tie
    page = show(workspace, "BUSY", limit=2, before=page.next_before)
    assert [ident(i) for i in page.timeline] == ["E-020", "E-019"]


def test_before_is_exclusive_and_naive_means_workspace_time(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_busy_customer(conn)

    aware = show(workspace, "BUSY", limit=4, before=T0 + timedelta(minutes=7))
    naive_tokyo = show(workspace, "BUSY", limit=4, before=datetime(2025, 1, 1, 9, 7))

    assert [ident(i) for i in aware.timeline] == ["O-6", "E-006", "O-5", "E-005"]
    assert naive_tokyo.timeline == aware.timeline


def test_kinds_keeps_only_the_asked_sources(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        seed_full_history(conn)

    result = show(workspace, kinds=["order", "return"])

    assert [ident(i) for i in result.timeline] == ["O-2", "R-1", "O-1"]
    with pytest.raises(ValidationError, match="unknown timeline kind.*'orders'"):
        show(workspace, kinds=["orders"])
    with pytest.raises(ValidationError, match="limit"):
        show(workspace, limit=0)


def test_unknown_customer_is_not_found_with_a_hint(workspace: Context) -> None:
    with pytest.raises(NotFound, match=r"no customer with id 'NOPE'; check the id"):
        show(workspace, "NOPE")


def test_customer_without_activity_has_an_empty_timeline(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        add_customer(conn, "QUIET")

    result = show(workspace, "QUIET")

    assert result.timeline == () and result.next_before is None
    assert result.profile.consents == {} and result.profile.account_id is None
    stats = result.profile.stats
    assert (stats.orders, stats.revenue, stats.surveys_answered, stats.events) == (0, 0, 0, 0)
    assert stats.first_order_at is None and stats.latest_nps is None


def test_a_page_costs_the_same_for_thousands_of_events(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        pk = add_customer(conn, "HEAVY")
        conn.execute(
            sa.insert(t.events),
            [
                {"external_id": f"H-{i}", "customer_id": pk, "type": "page_view",
                 "occurred_at": T0 + timedelta(seconds=i)}
                for i in range(5000)
            ],
        )  # fmt: skip
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(workspace.engine, "before_cursor_execute", record)
    try:
        result = show(workspace, "HEAVY", limit=25)
    finally:
        sa.event.remove(workspace.engine, "before_cursor_execute", record)

    assert [ident(i) for i in result.timeline] == [f"H-{i}" for i in range(4999, 4974, -1)]
    assert result.profile.stats.events == 5000
    # One statement per source plus the profile: nothing grows with the history.
    assert len(statements) <= len(TIMELINE_KINDS) + 3
    event_queries = [s for s in statements if "FROM events" in s and "timeline_pk" in s]
    assert len(event_queries) == 1


def test_events_page_reads_the_customer_time_index(sqlite_workspace: Context) -> None:
    from kizuna.services.timeline_sources import sources

    source = sources()["event"]
    query = source.query.where(source.owner == 1, source.at < T0)
    query = query.order_by(source.at.desc()).limit(10)
    with sqlite_workspace.engine.connect() as conn:
        compiled = query.compile(conn)
        params = tuple(str(compiled.params[name]) for name in compiled.positiontup or ())
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        plan = " ".join(str(row[-1]) for row in rows)

    assert "ix_events_customer_id_occurred_at" in plan
    assert "TEMP B-TREE" not in plan
