"""Pure rules: stacking order, Tokyo day boundaries, tiers, coupon codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kizuna.domain import schedule
from kizuna.domain.earning import Line, quote_order, reversal_for, share
from kizuna.domain.programme import parse_programme
from kizuna.domain.rewards import ALPHABET, Coupon, check_coupon, new_code, normalise_code
from kizuna.domain.tiers import progress, review, upgrade
from kizuna.errors import ValidationError
from kizuna.services.programme.jobs import birthdays_on

TOKYO = ZoneInfo("Asia/Tokyo")


def prog(**sections: object) -> object:
    return parse_programme(sections)


def test_stacking_order_item_then_promo_then_tier_then_one_rounding_then_caps() -> None:
    p = parse_programme(
        {
            "earning": {
                "base_points": 1,
                "per_amount": 100,
                "rounding": "floor",
                "cap_per_order": 1000,
                "category_multipliers": {"FOOD": 2},
                "product_multipliers": {"P1": 3},
            },
            "promos": [
                {"name": "autumn", "factor": 1.5, "starts": "2028-10-01", "ends": "2028-10-31"}
            ],
            "tiers": {
                "levels": [
                    {"name": "base", "threshold": 0},
                    {"name": "gold", "threshold": 10, "multiplier": 1.1},
                ]
            },
        }
    )
    lines = [Line(1, 1050, "P1", "FOOD"), Line(2, 1050, None, "FOOD"), Line(3, 99, None, None)]
    q = quote_order(p, lines, date(2028, 10, 15), tier="gold")
    # 10.5*3*1.5*1.1 + 10.5*2*1.5*1.1 + 0.99*1.5*1.1 = 51.975 + 34.65 + 1.6335 = 88.2585 -> 88
    assert q.points == 88
    assert sum(x.points for x in q.lines) == 88
    assert "x3 product P1" in q.lines[0].why and "x2" not in q.lines[0].why
    off_promo = quote_order(p, lines, date(2028, 11, 1), tier=None)
    assert off_promo.points == int(10.5 * 3 + 10.5 * 2 + 0.99)
    capped = quote_order(p, [Line(1, 10**7)], date(2028, 1, 1))
    assert capped.points == 1000


def test_minimum_spend_and_daily_cap() -> None:
    p = parse_programme({"earning": {"min_spend": 1000, "cap_per_day": 50}})
    assert quote_order(p, [Line(1, 999)], date(2028, 1, 1)).points == 0
    assert quote_order(p, [Line(1, 10000)], date(2028, 1, 1), earned_today=30).points == 20


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"earning": {"rounding": "up"}}, "rounding: must be one of floor, round, ceil"),
        ({"earning": {"per_amount": 0}}, "per_amount: must be at least 1"),
        ({"earning": {"category_multipliers": {"X": "abc"}}}, "category_multipliers.X"),
        ({"actions": {"dance": 5}}, "unknown action"),
        (
            {"tiers": {"levels": [{"name": "a", "threshold": 5}, {"name": "b", "threshold": 1}]}},
            "rising thresholds",
        ),
        ({"promos": [{"starts": "2028-02-01", "ends": "2028-01-01"}]}, "before starts"),
        ({"programme": {"timezone": "Mars/Olympus"}}, "unknown IANA timezone"),
        ({"bogus": {}}, "unknown section"),
    ],
)
def test_bad_programme_documents_name_the_field(doc: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        parse_programme(doc)


def test_share_and_reversal_are_exact() -> None:
    from fractions import Fraction

    assert sum(share(10, [Fraction(1), Fraction(1), Fraction(1)])) == 10
    parts = [reversal_for(33, 1000, done, 100) for done in range(0, 1000, 100)]
    assert sum(parts) == 33


def test_expiry_and_pending_follow_tokyo_days() -> None:
    p = parse_programme(
        {"earning": {"pending_days": 7}, "expiry": {"policy": "end_of_month", "months": 1}}
    )
    # 23:30 UTC on 31 Jan is 08:30 on 1 Feb in Tokyo: a February earning
    earned = datetime(2028, 1, 31, 23, 30, tzinfo=UTC)
    assert schedule.expires_at(p, earned) == datetime(2028, 3, 1, tzinfo=TOKYO)
    assert schedule.available_at(p, earned) == datetime(2028, 2, 8, tzinfo=TOKYO)
    # leap year: earned 29 Feb 2028 (Tokyo), 12 months -> good through 28 Feb 2029
    m = parse_programme({"expiry": {"policy": "months_after", "months": 12}})
    assert schedule.expires_at(m, datetime(2028, 2, 29, 12, tzinfo=TOKYO)) == datetime(
        2029, 3, 1, tzinfo=TOKYO
    )
    # 31 Jan + 1 month ends on 29 Feb in a leap year
    m1 = parse_programme({"expiry": {"policy": "months_after", "months": 1}})
    assert schedule.expires_at(m1, datetime(2028, 1, 31, 9, tzinfo=TOKYO)) == datetime(
        2028, 3, 1, tzinfo=TOKYO
    )
    y = parse_programme({"expiry": {"policy": "end_of_year"}})
    # 15:00 UTC on 31 Dec is already 1 Jan in Tokyo
    assert schedule.expires_at(y, datetime(2028, 12, 31, 15, tzinfo=UTC)) == datetime(
        2030, 1, 1, tzinfo=TOKYO
    )
    assert schedule.expires_at(y, datetime(2028, 12, 31, 14, 59, tzinfo=UTC)) == datetime(
        2029, 1, 1, tzinfo=TOKYO
    )


def test_tier_periods_follow_tokyo_days() -> None:
    cal = parse_programme({"tiers": {"window": "calendar_year", "grace_days": 30}})
    start, end = schedule.tier_window(
        cal, datetime(2028, 12, 31, 15, 30, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert start == datetime(2029, 1, 1, tzinfo=TOKYO)  # already New Year in Tokyo
    assert schedule.tier_period_end(
        cal, datetime(2028, 6, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)
    ) == datetime(2029, 1, 1, tzinfo=TOKYO) + timedelta(days=30)
    ann = parse_programme({"tiers": {"window": "anniversary"}})
    joined = datetime(2024, 2, 29, 10, tzinfo=TOKYO)
    start, end = schedule.tier_window(ann, datetime(2028, 3, 1, tzinfo=TOKYO), joined)
    assert start == datetime(2028, 2, 29, tzinfo=TOKYO) and end == datetime(
        2029, 2, 28, tzinfo=TOKYO
    )
    start, _ = schedule.tier_window(ann, datetime(2027, 3, 1, tzinfo=TOKYO), joined)
    assert start == datetime(2027, 2, 28, tzinfo=TOKYO)
    rolling = parse_programme({"tiers": {"window_days": 2}})
    start, end = schedule.tier_window(rolling, datetime(2028, 3, 1, 0, 30, tzinfo=TOKYO), joined)
    assert (start, end) == (datetime(2028, 2, 29, tzinfo=TOKYO), datetime(2028, 3, 2, tzinfo=TOKYO))


def test_birthdays_on_29_february_are_celebrated_on_28_february_in_common_years() -> None:
    assert birthdays_on(date(2027, 2, 28)) == [(2, 28), (2, 29)]
    assert birthdays_on(date(2028, 2, 28)) == [(2, 28)]
    assert birthdays_on(date(2028, 2, 29)) == [(2, 29)]


def test_tiers_upgrade_at_once_and_downgrade_by_policy() -> None:
    levels = [
        {"name": "a", "threshold": 0},
        {"name": "b", "threshold": 100},
        {"name": "c", "threshold": 500, "benefits": ["early access"]},
    ]
    one = parse_programme({"tiers": {"levels": levels, "downgrade": "one_level"}})
    re = parse_programme({"tiers": {"levels": levels, "downgrade": "reevaluate"}})
    assert upgrade(one, "a", 600) == "c"
    assert upgrade(one, "c", 0) == "c"
    assert review(one, "c", 0) == "b"
    assert review(re, "c", 0) == "a"
    assert review(re, "b", 700) == "c"
    p = progress(one, "b", 320)
    assert (p.next_tier, p.needed) == ("c", 180)
    assert progress(one, "c", 900).benefits == ("early access",)


def test_coupon_codes_are_unique_unambiguous_and_checked() -> None:
    codes = {new_code() for _ in range(5000)}
    assert len(codes) == 5000
    assert all(set(c.replace("-", "")) <= set(ALPHABET) for c in codes)
    assert normalise_code(" abcd-efgh-ijkl ".replace("i", "1")) == "ABCD-EFGH-1JK1"
    now = datetime(2028, 1, 1, tzinfo=UTC)
    c = Coupon("X", "percent", 10, 1000, None, now + timedelta(days=1), 1, 0)
    assert check_coupon(c, 5000, now, None) == 500
    with pytest.raises(ValidationError, match="at least 1000"):
        check_coupon(c, 999, now, None)
    with pytest.raises(ValidationError, match="expired"):
        check_coupon(c, 5000, now + timedelta(days=2), None)
    with pytest.raises(ValidationError, match="already been used"):
        check_coupon(Coupon("Y", "fixed", 100, 0, None, None, 1, 1), 5000, now, None)
