"""Numbers, money, dates and instants formatted for the reader's locale.

Money arrives in minor units (see :mod:`kizuna.domain.money`); instants are
UTC and shown in the *workspace* timezone, because "31 January" must mean the
shop's day, not the viewer's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from kizuna.domain.money import from_minor


class Formatter:
    """Formatting for one locale, currency and timezone."""

    def __init__(self, locale: str, currency: str, exponent: int, timezone: str) -> None:
        self.locale = locale
        self.currency = currency
        self.exponent = exponent
        self.tz = ZoneInfo(timezone)

    def number(self, value: int | float | Decimal | None) -> str:
        if value is None:
            return "—"
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "—"
        return format_percent(value, format="#,##0.0%", locale=self.locale)

    def money(self, minor: int | None) -> str:
        """``￥1,980`` in Japanese, ``¥1,980`` in English; exact, never via float."""
        if minor is None:
            return "—"
        return format_currency(
            from_minor(int(minor), self.exponent), self.currency, locale=self.locale
        )

    def date(self, value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        return format_date(value, format="medium", locale=self.locale)

    def month(self, value: dt.date) -> str:
        return format_skeleton("yMMM", value, locale=self.locale)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value, format="medium", tzinfo=self.tz, locale=self.locale)

    def as_of(self, value: dt.datetime) -> str:
        """The time of day (``9:05``) of today's instants, date and time of older ones."""
        local = value.astimezone(self.tz)
        if local.date() == dt.datetime.now(self.tz).date():
            return format_time(local, format="short", locale=self.locale)
        return format_datetime(local, format="short", locale=self.locale)
