"""Local days in the business timezone.

Times are stored in UTC, but "today", "last 30 days", "this month" and
birthdays are days of the business; these helpers turn such local periods
into UTC instants so every query counts the same days a marketer sees.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def as_utc(moment: datetime, tz: ZoneInfo) -> datetime:
    """Aware UTC instant; a naive value is read as local time in ``tz``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which local ``day`` begins."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def local_day_range(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Half-open UTC interval covering local days ``first`` .. ``last`` inclusive."""
    return local_day_start(first, tz), local_day_start(last + timedelta(days=1), tz)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The business day on which an instant falls."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def birthday_in_year(birthday: date, year: int) -> date:
    """The day a birthday is celebrated in ``year``; 29 February falls on 28 February."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)
