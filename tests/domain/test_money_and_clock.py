"""The pure rules of money and local days, including property tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kizuna.domain.clock import as_utc, birthday_in_year, local_date, local_day_range
from kizuna.domain.money import format_money, from_minor, to_minor
from kizuna.ingest.convert import ConvertContext, convert
from kizuna.ingest.kinds import Field

TOKYO = ZoneInfo("Asia/Tokyo")


def test_amounts_become_exact_minor_units() -> None:
    assert to_minor("1,980", 0) == 1980
    assert to_minor("¥2000", 0) == 2000
    assert to_minor("12.50", 2) == 1250
    assert to_minor("12.5", 2) == 1250
    assert to_minor(3, 2) == 300
    with pytest.raises(ValueError, match="decimal"):
        to_minor("12.5", 0)
    with pytest.raises(ValueError, match="not an amount"):
        to_minor("twelve", 0)
    assert format_money(1980, "JPY", 0) == "¥1,980"
    assert format_money(123456, "USD", 2) == "USD 1,234.56"
    assert from_minor(1250, 2) == Decimal("12.50")


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([0, 2]))
def test_vectorised_import_agrees_with_the_domain_rule(minor: int, exponent: int) -> None:
    """The Arrow money converter and ``to_minor`` give the same answer for any amount."""
    text = str(from_minor(minor, exponent))
    with_commas = f"{from_minor(minor, exponent):,}"
    ctx = ConvertContext(TOKYO, exponent, 100)
    values, bad = convert(pa.array([text, with_commas]), Field("price", "money", min_value=0), ctx)
    assert bad == []
    assert (
        values.to_pylist()
        == [to_minor(text, exponent), to_minor(with_commas, exponent)]
        == [minor, minor]
    )


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False))
def test_vectorised_import_refuses_what_the_domain_refuses(amount: Decimal) -> None:
    ctx = ConvertContext(TOKYO, 2, 100)
    text = format(amount, "f")
    values, bad = convert(pa.array([text]), Field("price", "money"), ctx)
    try:
        expected: int | None = to_minor(text, 2)
    except ValueError:
        expected = None
    assert values.to_pylist() == [expected]
    assert bool(bad) == (expected is None)


def test_local_days_follow_the_business_timezone() -> None:
    start, end = local_day_range(date(2025, 1, 31), date(2025, 1, 31), TOKYO)
    assert start == datetime(2025, 1, 30, 15, tzinfo=UTC) and end == datetime(
        2025, 1, 31, 15, tzinfo=UTC
    )
    assert local_date(datetime(2025, 1, 31, 15, 30, tzinfo=UTC), TOKYO) == date(2025, 2, 1)
    assert as_utc(datetime(2025, 1, 1, 9, 0), TOKYO) == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)


def test_leap_day_birthdays_are_celebrated_on_28_february() -> None:
    assert birthday_in_year(date(2000, 2, 29), 2025) == date(2025, 2, 28)
    assert birthday_in_year(date(2000, 2, 29), 2028) == date(2028, 2, 29)
