"""Handlers on a real database (SQLite and PostgreSQL): jobs, tiers, coupons, checks, liability."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.api.apiclient import add_members

from kizuna.bootstrap import Context
from kizuna.domain.programme import parse_programme
from kizuna.errors import ValidationError
from kizuna.services.programme import config, coupons, jobs
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.liability import liability
from kizuna.services.programme.members import summary
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.programme.redemptions import Redeem, redeem
from kizuna.services.programme.refunds import RefundOrder, refund
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

TOKYO = ZoneInfo("Asia/Tokyo")
PROGRAMME = {
    "earning": {"pending_days": 3, "negative_policy": "claw_back"},
    "expiry": {"policy": "end_of_month", "months": 1},
    "actions": {"birthday": 300},
    "tiers": {
        "basis": "spend",
        "window": "calendar_year",
        "downgrade": "one_level",
        "grace_days": 0,
        "levels": [
            {"name": "member", "threshold": 0},
            {"name": "silver", "threshold": 10000, "multiplier": 2},
            {"name": "gold", "threshold": 50000},
        ],
    },
}


@pytest.fixture
def ws(workspace: Context) -> Context:
    config.forget_cache()
    add_members(workspace, 3)
    with workspace.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers)
            .where(t.customers.c.external_id == "M00001")
            .values(birthday=date(1996, 2, 29))
        )
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        config.apply_programme(uow, parse_programme(PROGRAMME), "test")
        uow.commit()
    return workspace


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def earn(
    ctx: Context, order: str, amount: int, at: datetime, member: str = "M00000"
) -> dict[str, object]:
    with uow(ctx) as u:
        return record_order(
            u, RecordOrder(order, member, (OrderLine(1, amount),), ordered_at=at), now=at
        )[1]


def test_pending_release_and_month_end_expiry_in_tokyo_are_idempotent_jobs(ws: Context) -> None:
    at = datetime(2028, 1, 31, 23, 30, tzinfo=UTC)  # 1 Feb 08:30 in Tokyo
    body = earn(ws, "O1", 5000, at)
    assert (
        body["state"] == "pending"
        and body["expires_at"] == datetime(2028, 3, 1, tzinfo=TOKYO).astimezone(UTC).isoformat()
    )
    release = datetime(2028, 2, 4, tzinfo=TOKYO)
    with uow(ws) as u:
        assert jobs.release_and_expire(u, release - timedelta(seconds=1)).released == 0
        assert jobs.release_and_expire(u, release).released == 50
        assert jobs.release_and_expire(u, release).released == 0
        assert summary(u, "M00000", release)["balance"]["available"] == 50
        lapse = datetime(2028, 3, 1, tzinfo=TOKYO)
        assert jobs.release_and_expire(u, lapse - timedelta(microseconds=1)).expired == 0
        assert jobs.release_and_expire(u, lapse).expired == 50
        assert jobs.release_and_expire(u, lapse).expired == 0
        assert summary(u, "M00000", lapse)["balance"]["available"] == 0
        assert check_all(u) == []


def test_tier_upgrades_at_once_and_drops_one_level_at_year_end_in_tokyo(ws: Context) -> None:
    at = datetime(2028, 6, 1, tzinfo=TOKYO)
    assert earn(ws, "O1", 60000, at)["tier"] == "gold"  # spend basis: 60,000 >= gold
    with uow(ws) as u:
        # 31 Dec 23:59 Tokyo: period not over yet
        assert jobs.review_tiers(u, datetime(2028, 12, 31, 23, 59, tzinfo=TOKYO)).tier_changes == 0
        new_year = datetime(2029, 1, 1, tzinfo=TOKYO)
        assert jobs.review_tiers(u, new_year).tier_changes == 0  # 2028 spend qualifies for gold
        assert summary(u, "M00000", new_year)["tier"] == "gold"
        assert (
            jobs.review_tiers(u, datetime(2030, 1, 1, tzinfo=TOKYO)).tier_changes == 1
        )  # nothing in 2029
        assert summary(u, "M00000", datetime(2030, 1, 2, tzinfo=TOKYO))["tier"] == "silver"
        assert jobs.review_tiers(u, datetime(2030, 1, 1, tzinfo=TOKYO)).tier_changes == 0


def test_refund_withdraws_tier_credit_and_claws_back_spent_points(ws: Context) -> None:
    at = datetime(2028, 6, 1, tzinfo=TOKYO)
    earn(ws, "O0", 5000, at)
    body = earn(ws, "O1", 20000, at)
    assert body["tier"] == "silver" and body["points"] == 200  # earns at the tier it had
    later = at + timedelta(days=10)
    with uow(ws) as u:
        redeem(u, Redeem("M00000", 220, "R1"), later)  # 50 from O0's lot, 170 from O1's
    assert earn(ws, "O2", 1000, later)["points"] == 20  # silver doubles; still pending
    with uow(ws) as u:
        r = refund(u, RefundOrder("O1", "F1"), later)[1]
    assert r["tier"] == "member"
    got = (r["reversed_points"], r["from_order_lot"], r["taken_by_policy"], r["written_off"])
    assert got == (200, 30, 20, 150)
    assert r["balance"] == {"available": 0, "pending": 0, "reserved": 0, "owed": 0}
    with uow(ws) as u:
        assert check_all(u) == []


def test_birthday_points_on_28_february_for_a_leap_day_birthday_once_a_year(ws: Context) -> None:
    with uow(ws) as u:
        assert jobs.award_birthdays(u, datetime(2027, 2, 27, 23, 59, tzinfo=TOKYO)).birthdays == 0
        assert jobs.award_birthdays(u, datetime(2027, 2, 28, 0, 0, tzinfo=TOKYO)).birthdays == 1
        assert jobs.award_birthdays(u, datetime(2027, 2, 28, 23, 0, tzinfo=TOKYO)).birthdays == 0
        assert (
            jobs.award_birthdays(u, datetime(2028, 2, 28, 12, tzinfo=TOKYO)).birthdays == 0
        )  # leap year: 29th
        assert jobs.award_birthdays(u, datetime(2028, 2, 29, 12, tzinfo=TOKYO)).birthdays == 1
        assert summary(u, "M00001", datetime(2028, 3, 5, tzinfo=TOKYO))["balance"]["pending"] == 0


def test_coupons_generate_unique_codes_and_are_single_use(ws: Context) -> None:
    with uow(ws) as u:
        codes = coupons.generate(u, count=2000, kind="fixed", value=500, batch="b1", min_spend=1000)
        u.commit()
    assert len(set(codes)) == 2000
    at = datetime(2028, 6, 1, tzinfo=TOKYO)
    with uow(ws) as u:
        assert coupons.validate(u, codes[0].lower(), 3000)["discount"] == 500
        body = record_order(
            u, RecordOrder("C1", "M00000", (OrderLine(1, 3000),), coupon_code=codes[0]), now=at
        )[1]
    assert body["coupon_discount"] == 500
    with uow(ws) as u, pytest.raises(ValidationError, match="already been used"):
        record_order(
            u, RecordOrder("C2", "M00000", (OrderLine(1, 3000),), coupon_code=codes[0]), now=at
        )
    with uow(ws) as u, pytest.raises(ValidationError, match="at least 1000"):
        record_order(
            u, RecordOrder("C3", "M00000", (OrderLine(1, 999),), coupon_code=codes[1]), now=at
        )


def test_liability_and_checks(ws: Context) -> None:
    at = datetime(2028, 6, 1, tzinfo=TOKYO)
    earn(ws, "O1", 10000, at)
    with uow(ws) as u:
        adjust(u, Adjust("M00002", 40, "goodwill", "tester"), at)
    with uow(ws) as u:
        report = liability(u, at)
    assert report["outstanding_points"] == 140 and report["pending"] == 100
    assert {m["month"] for m in report["expiring_by_month"]} == {"2028-07"}
    with uow(ws) as u:
        assert check_all(u) == []
        u.conn.execute(sa.text("UPDATE point_accounts SET available = available + 1"))
        assert check_all(u) != []


def test_liability_by_month_sums_every_live_lot_in_its_tokyo_month(ws: Context) -> None:
    """Summed per expiry instant in SQL, the months equal a lot-by-lot count in
    the programme's timezone, across a Tokyo month boundary (UTC's is 9 h later)."""
    from kizuna.domain.clock import local_date
    from kizuna.store import programme_tables as pt

    june_end = datetime(2028, 6, 30, 23, 30, tzinfo=TOKYO)  # still June 30 14:30 in UTC
    july_start = datetime(2028, 7, 1, 0, 30, tzinfo=TOKYO)  # June 30 15:30 in UTC
    for n, (member, at) in enumerate(
        [("M00000", june_end), ("M00001", june_end), ("M00002", june_end), ("M00000", july_start)]
    ):
        earn(ws, f"L{n}", 1000 * (n + 1), at, member)
    with uow(ws) as u:
        report = liability(u, july_start)
        lt = pt.point_lots.c
        lots = u.conn.execute(
            sa.select(lt.expires_at, lt.remaining).where(
                lt.state.in_(("pending", "available")), lt.remaining > 0
            )
        ).all()
    expected: dict[str, int] = {}
    for expires_at, remaining in lots:
        month = local_date(expires_at, TOKYO).strftime("%Y-%m")
        expected[month] = expected.get(month, 0) + remaining
    assert len({e for e, _ in lots}) < len(lots)  # lots share an expiry instant
    assert len(expected) == 2  # the two earning months expire in different months
    assert {m["month"]: m["points"] for m in report["expiring_by_month"]} == expected
    assert sum(expected.values()) == report["outstanding_points"]


@pytest.mark.parametrize("scope", ["customer", "account"])
def test_every_third_order_earns_a_voucher_counted_per_member_or_per_company(
    workspace: Context, scope: str
) -> None:
    config.forget_cache()
    add_members(workspace, 2)
    with workspace.engine.begin() as conn:
        company = conn.execute(
            sa.insert(t.accounts).values(external_id="ACME", name="Acme").returning(t.accounts.c.id)
        ).scalar()
        conn.execute(sa.update(t.customers).values(account_id=company))
    doc = {
        "frequency": {
            "orders": 3,
            "days": 30,
            "scope": scope,
            "voucher_kind": "fixed",
            "voucher_value": 500,
        }
    }
    with uow(workspace) as u:
        config.apply_programme(u, parse_programme(doc), "test")
        u.commit()
    at = datetime(2028, 6, 1, tzinfo=TOKYO)
    vouchers = [
        earn(workspace, f"O{i}", 1000, at + timedelta(days=i), member=f"M0000{i % 2}")["voucher"]
        for i in range(6)
    ]
    if scope == "account":
        assert [v is not None for v in vouchers] == [False, False, True, False, False, True]
    else:  # each member has 3 orders: their third is orders 4 and 5
        assert [v is not None for v in vouchers] == [False, False, False, False, True, True]
    code = next(v for v in vouchers if v)
    with uow(workspace) as u:
        assert coupons.validate(u, str(code), 1000)["discount"] == 500
