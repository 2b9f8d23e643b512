"""When points become available, when they lapse, and where tier periods begin.

All of these are *local days* in the programme timezone turned into UTC
instants: a point that "expires at the end of March" in Tokyo must lapse at
midnight Tokyo time, not nine hours later.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from kizuna.domain.clock import local_date, local_day_start
from kizuna.domain.programme import Programme


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months``, clamped to the month's end (31 Jan + 1 -> 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def available_at(programme: Programme, earned_at: datetime) -> datetime:
    """Points earned on a local day become available at the start of day + pending_days."""
    if programme.pending_days == 0:
        return earned_at
    day = local_date(earned_at, programme.tz)
    return local_day_start(day + timedelta(days=programme.pending_days), programme.tz)


def expires_at(programme: Programme, earned_at: datetime) -> datetime | None:
    """The instant a lot earned at ``earned_at`` lapses (None: never, or on inactivity).

    Points are good through the whole last local day, so the instant is the
    start of the following local day.
    """
    tz = programme.tz
    day = local_date(earned_at, tz)
    if programme.expiry == "months_after":
        return local_day_start(add_months(day, programme.expiry_months) + timedelta(days=1), tz)
    if programme.expiry == "end_of_month":
        # Lapse at the end of the month ``months - 1`` after the month of earning.
        first = add_months(day.replace(day=1), programme.expiry_months)
        return local_day_start(first, tz)
    if programme.expiry == "end_of_year":
        return local_day_start(date(day.year + 1, 1, 1), tz)
    return None


def inactivity_deadline(programme: Programme, last_activity: datetime) -> datetime | None:
    """Under the inactivity policy every lot lapses this long after the last earning."""
    if programme.expiry != "inactivity":
        return None
    day = local_date(last_activity, programme.tz)
    return local_day_start(
        add_months(day, programme.expiry_months) + timedelta(days=1), programme.tz
    )


def tier_window(
    programme: Programme, now: datetime, member_since: datetime
) -> tuple[datetime, datetime]:
    """The half-open UTC interval whose qualifying activity sets the tier at ``now``."""
    tz = programme.tz
    today = local_date(now, tz)
    if programme.tier_window == "calendar_year":
        return local_day_start(date(today.year, 1, 1), tz), local_day_start(
            date(today.year + 1, 1, 1), tz
        )
    if programme.tier_window == "anniversary":
        joined = local_date(member_since, tz)
        years = today.year - joined.year
        start = add_months(joined, 12 * years)
        if start > today:
            start = add_months(joined, 12 * (years - 1))
        return local_day_start(start, tz), local_day_start(add_months(start, 12), tz)
    end = local_day_start(today + timedelta(days=1), tz)
    return local_day_start(today - timedelta(days=programme.tier_window_days - 1), tz), end


def tier_period_end(programme: Programme, now: datetime, member_since: datetime) -> datetime:
    """When the next downgrade review is due: period end plus the grace days.

    A rolling window has no natural end; it is reviewed at each local month start.
    """
    tz = programme.tz
    if programme.tier_window == "rolling":
        today = local_date(now, tz)
        end = local_day_start(add_months(today.replace(day=1), 1), tz)
    else:
        end = tier_window(programme, now, member_since)[1]
    return end + timedelta(days=programme.tier_grace_days)
