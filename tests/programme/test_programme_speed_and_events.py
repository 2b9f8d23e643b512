"""The fast earn path keeps its guarantees; period caps; automatic sign-up; journey events.

Real SQLite and PostgreSQL (the ``workspace`` fixture runs each test on both).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from tests.api.apiclient import add_members

from kizuna.bootstrap import Context
from kizuna.domain.earning import period_start
from kizuna.domain.programme import parse_programme
from kizuna.errors import Conflict
from kizuna.services import journeys
from kizuna.services.programme import config, jobs, system_events
from kizuna.services.programme.actions import RewardAction, reward_action
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.idempotency import Idem
from kizuna.services.programme.members import summary
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

NOW = datetime(2028, 3, 1, 1, 0, tzinfo=UTC)  # 1 March 10:00 in Tokyo, a Wednesday


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def apply(ctx: Context, doc: dict[str, Any]) -> None:
    config.forget_cache()
    with uow(ctx) as u:
        config.apply_programme(u, parse_programme(doc), "test")
        u.commit()


def earn(
    ctx: Context, order: str, amount: int, at: datetime, member: str = "M00000", key: str = ""
) -> dict[str, Any]:
    idem = Idem(key, "h-" + order) if key else None
    with uow(ctx) as u:
        return record_order(
            u, RecordOrder(order, member, (OrderLine(1, amount),), idem=idem), now=at
        )[1]


@pytest.fixture
def ws(workspace: Context) -> Iterator[Context]:
    config.forget_cache()
    add_members(workspace, 3)
    yield workspace
    config.forget_cache()


def test_an_earn_is_three_statements_once_the_member_has_an_account(ws: Context) -> None:
    apply(ws, {"earning": {"cap_per_day": 100000}, "actions": {"first_purchase": 50}})
    earn(ws, "O1", 1000, NOW)
    seen: list[str] = []

    def count(*args: Any) -> None:
        if "programme_versions" not in args[2]:  # the programme cache's periodic check
            seen.append(args[2])

    event.listen(ws.engine, "before_cursor_execute", count)
    try:
        body = earn(ws, "O2", 2000, NOW + timedelta(minutes=1), key="k2")
    finally:
        event.remove(ws.engine, "before_cursor_execute", count)
    assert body["points"] == 20 and body["first_purchase_bonus"] == 0
    if ws.engine.dialect.name == "postgresql":
        # lock, reads (cap, first purchase, tier, Idempotency-Key, ids), writes
        assert len(seen) == 3, seen
    # The retry returns the first result and changes nothing.
    assert earn(ws, "O2", 2000, NOW + timedelta(minutes=2), key="k2") == body
    with uow(ws) as u:
        assert check_all(u) == []
        assert summary(u, "M00000", NOW)["balance"]["available"] == 10 + 50 + 20


def test_lots_not_loaded_on_earn_still_release_and_expire_on_time(ws: Context) -> None:
    apply(ws, {"earning": {"pending_days": 2}, "expiry": {"policy": "months_after", "months": 1}})
    earn(ws, "O1", 1000, NOW)  # pending until 3 March (Tokyo), expires 1 April
    body = earn(ws, "O2", 2000, NOW + timedelta(hours=1))  # nothing due: lots are not read
    assert body["balance"] == {"available": 0, "pending": 30, "reserved": 0, "owed": 0}
    body = earn(ws, "O3", 500, NOW + timedelta(days=3))  # both released first
    assert body["balance"]["available"] == 30 and body["balance"]["pending"] == 5
    body = earn(ws, "O4", 100, NOW + timedelta(days=40))  # the first three lapsed
    assert body["balance"] == {"available": 0, "pending": 1, "reserved": 0, "owed": 0}
    with uow(ws) as u:
        assert check_all(u) == []
        kinds = u.conn.execute(
            sa.select(pt.ledger_entries.c.kind, sa.func.count()).group_by(pt.ledger_entries.c.kind)
        ).all()
    assert dict((k, int(n)) for k, n in kinds) == {"earn": 4, "release": 3, "expire": 3}


def test_periods_of_the_caps_in_local_days() -> None:
    wed = date(2028, 3, 1)
    assert period_start("week", wed) == date(2028, 2, 28)  # Monday
    assert period_start("month", wed) == date(2028, 3, 1)
    assert period_start("year", wed, (4, 1)) == date(2027, 4, 1)
    assert period_start("year", date(2028, 4, 1), (4, 1)) == date(2028, 4, 1)
    assert period_start("week", date(2028, 2, 29)) == date(2028, 2, 28)


def test_week_month_and_programme_year_caps_limit_earning(ws: Context) -> None:
    apply(
        ws,
        {
            "programme": {"year_starts": "04-01"},
            "earning": {"cap_per_week": 150, "cap_per_month": 250, "cap_per_year": 400},
        },
    )
    assert earn(ws, "W1", 10000, NOW)["points"] == 100
    capped = earn(ws, "W2", 10000, NOW + timedelta(days=1))
    assert capped["points"] == 50
    assert any("week cap 150" in s for s in capped["explanation"])
    # Next Monday a new week, but the month has 100 left ...
    assert earn(ws, "W3", 20000, datetime(2028, 3, 6, 1, tzinfo=UTC))["points"] == 100
    # ... 31 March 23:30 in Tokyo is still March and the old programme year ...
    assert earn(ws, "W4", 50000, datetime(2028, 3, 31, 14, 30, tzinfo=UTC))["points"] == 0
    # ... 1 April 00:30 in Tokyo starts a new month and a new programme year (week cap left)
    assert earn(ws, "W5", 50000, datetime(2028, 3, 31, 15, 30, tzinfo=UTC))["points"] == 150
    with uow(ws) as u:
        assert check_all(u) == []


def test_automatic_signup_points_are_granted_once_at_enrolment(ws: Context) -> None:
    apply(ws, {"actions": {"signup": 100}, "enrolment": {"automatic_signup": True}})
    body = earn(ws, "S1", 1000, NOW)
    assert body["balance"]["available"] == 110
    assert earn(ws, "S2", 1000, NOW)["balance"]["available"] == 120
    with uow(ws) as u, pytest.raises(Conflict, match="automatically at enrolment"):
        reward_action(u, RewardAction("M00000", "signup", "web"), NOW)
    # Customers imported without an account are enrolled by the scheduled job, once.
    with uow(ws) as u:
        assert jobs.enrol_new_members(u, NOW).enrolled == 2
    with uow(ws) as u:
        assert jobs.enrol_new_members(u, NOW).enrolled == 0
        assert summary(u, "M00001", NOW)["balance"]["available"] == 100
        signups = u.conn.execute(
            sa.select(sa.func.count()).where(pt.point_lots.c.source == "action:signup:enrolment")
        ).scalar_one()
        assert signups == 3
        assert check_all(u) == []


def test_without_automatic_signup_enrolment_grants_nothing(ws: Context) -> None:
    apply(ws, {"actions": {"signup": 100}})
    assert earn(ws, "S1", 1000, NOW)["balance"]["available"] == 10
    with uow(ws) as u:
        assert jobs.enrol_new_members(u, NOW).enrolled == 0


def _journey(ctx: Context, name: str, event_type: str) -> None:
    doc = {
        "name": name,
        "holdout_percent": 0,
        "trigger": {"event": event_type},
        "steps": [{"id": "t", "action": "create_task", "title": "call {{ name }}"}],
    }
    journeys.handle_save(journeys.SaveJourney(doc), uow(ctx))
    journeys.set_status(name, "active", uow(ctx))


def _events(ctx: Context, kind: str) -> list[Any]:
    with ctx.engine.connect() as conn:
        return list(
            conn.execute(sa.select(t.events).where(t.events.c.type == kind).order_by(t.events.c.id))
        )


def test_tier_changed_event_starts_a_journey_once(ws: Context) -> None:
    apply(
        ws,
        {
            "tiers": {
                "basis": "points",
                "levels": [{"name": "silver", "threshold": 100}],
            }
        },
    )
    _journey(ws, "congrats", "tier_changed")
    earn(ws, "T1", 5000, NOW)
    earn(ws, "T2", 6000, NOW + timedelta(minutes=1))  # 50 + 60: silver
    earn(ws, "T3", 6000, NOW + timedelta(minutes=2))  # already silver: no event
    (ev,) = _events(ws, "tier_changed")
    assert ev.properties["old_tier"] is None and ev.properties["new_tier"] == "silver"
    assert journeys.enroll("congrats", uow(ws), now=NOW + timedelta(minutes=3)) == 1
    assert journeys.enroll("congrats", uow(ws), now=NOW + timedelta(minutes=4)) == 0
    with uow(ws) as u:
        hooks = u.conn.execute(
            sa.select(sa.func.count()).where(pt.programme_events.c.topic == "tier.changed")
        ).scalar_one()
        runs = u.conn.execute(sa.select(sa.func.count()).select_from(at.journey_runs)).scalar_one()
    assert hooks == 1 and runs == 1


def test_points_expiring_is_recorded_once_per_lot_and_starts_a_journey_once(ws: Context) -> None:
    apply(ws, {"expiry": {"policy": "months_after", "months": 1, "notify_days": 7}})
    _journey(ws, "use-them", "points_expiring")
    earn(ws, "E1", 1000, NOW)  # expires 1 April (Tokyo)
    earn(ws, "E2", 2000, NOW + timedelta(days=5))  # expires 6 April
    with uow(ws) as u:
        assert system_events.record_expiring(u, NOW + timedelta(days=20)) == 0
    with uow(ws) as u:
        assert system_events.record_expiring(u, NOW + timedelta(days=26)) == 1
    with uow(ws) as u:  # the scheduled jobs run again: nothing new for that lot
        assert jobs.run_all(u, NOW + timedelta(days=26, hours=1))["expiring_events"] == 0
    (ev,) = _events(ws, "points_expiring")
    assert ev.properties["points"] == 10 and 0 < ev.properties["days_left"] <= 7
    assert journeys.enroll("use-them", uow(ws), now=NOW + timedelta(days=27)) == 1
    assert journeys.enroll("use-them", uow(ws), now=NOW + timedelta(days=27)) == 0
    with uow(ws) as u:
        assert system_events.record_expiring(u, NOW + timedelta(days=31)) == 1  # the second lot
    assert len(_events(ws, "points_expiring")) == 2


def test_a_pooled_b2b_programme_pools_every_contact_to_the_company(ws: Context) -> None:
    from kizuna.services.programme.redemptions import Redeem, redeem
    from kizuna.services.programme.refunds import RefundOrder, refund

    apply(ws, {"b2b": {"pool": "account"}, "expiry": {"policy": "never"}})
    with ws.engine.begin() as conn:
        company = conn.execute(
            sa.insert(t.accounts).values(external_id="ACME", name="Acme").returning(t.accounts.c.id)
        ).scalar_one()
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id.in_(("M00000", "M00001")))
            .values(account_id=company)
        )
    earn(ws, "B1", 10000, NOW, member="M00001")  # the first contact to use the pool holds it
    earn(ws, "B2", 5000, NOW, member="M00000")
    earn(ws, "B3", 2000, NOW, member="M00002")  # no company: their own points
    with uow(ws) as u:
        assert summary(u, "M00000", NOW)["balance"]["available"] == 150
        assert summary(u, "M00001", NOW)["balance"]["available"] == 150
        assert summary(u, "M00002", NOW)["balance"]["available"] == 20
        orders_of = dict(
            u.conn.execute(
                sa.select(t.orders.c.external_id, t.customers.c.external_id).join(
                    t.customers, t.customers.c.id == t.orders.c.customer_id
                )
            ).all()
        )
    assert orders_of == {"B1": "M00001", "B2": "M00000", "B3": "M00002"}  # sales stay personal
    with uow(ws) as u:
        redeem(u, Redeem("M00000", 120, "RD1"), NOW)  # any contact spends the pool
    with uow(ws) as u:
        body = refund(u, RefundOrder("B1", "F1"), NOW)[1]  # its lot was spent first
    assert body["reversed_points"] == 100 and body["balance"]["available"] == -70
    with uow(ws) as u:
        assert summary(u, "M00001", NOW)["balance"]["owed"] == 100  # the spent lot's 100
        assert check_all(u) == []


def test_an_earn_that_lifts_the_tier_announces_it_within_its_three_statements(
    ws: Context,
) -> None:
    """The outbox row and the journey event join the earn's statement of writes
    on PostgreSQL (they were two statements more); both exist exactly once."""
    apply(ws, {"tiers": {"basis": "points", "levels": [{"name": "silver", "threshold": 100}]}})
    earn(ws, "U1", 5000, NOW)
    seen: list[str] = []

    def count(*args: Any) -> None:
        if "programme_versions" not in args[2]:
            seen.append(args[2])

    event.listen(ws.engine, "before_cursor_execute", count)
    try:
        body = earn(ws, "U2", 6000, NOW + timedelta(minutes=1), key="u2")  # 50 + 60: silver
    finally:
        event.remove(ws.engine, "before_cursor_execute", count)
    assert body["tier"] == "silver" and body["tier_changed"]
    if ws.engine.dialect.name == "postgresql":
        assert len(seen) == 3, seen
    assert earn(ws, "U2", 6000, NOW + timedelta(minutes=2), key="u2") == body  # a retry
    (ev,) = _events(ws, "tier_changed")
    assert (ev.properties["old_tier"], ev.properties["new_tier"]) == (None, "silver")
    assert ev.external_id.startswith("kizuna:tier_changed:")
    with ws.engine.connect() as conn:
        outbox = conn.execute(sa.select(pt.programme_events.c.topic, pt.programme_events.c.payload))
        assert [(r.topic, r.payload["to"]) for r in outbox] == [("tier.changed", "silver")]
