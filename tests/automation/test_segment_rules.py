"""The segment rule tree, parsed and validated without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kizuna.domain.segments import (
    Aggregate,
    And,
    Compare,
    Consent,
    Not,
    SurveyAnswer,
    parse_rule,
    parse_segment,
    window_bounds,
)
from kizuna.errors import SegmentError, ValidationError

TOKYO = ZoneInfo("Asia/Tokyo")


def error_of(rule: Any) -> SegmentError:
    with pytest.raises(SegmentError) as info:
        parse_rule(rule, "/rule")
    return info.value


def test_a_full_tree_parses_into_typed_nodes() -> None:
    rule = parse_rule(
        {
            "and": [
                {"field": "region", "op": "in", "value": ["東京都", "大阪府"]},
                {"field": "attributes.plan", "value": "gold"},
                {"consent": "email"},
                {"aggregate": "orders", "op": "gte", "value": 3, "days": 90},
                {"not": {"survey": "nps", "op": "lte", "value": 6, "days": 30}},
                {"field": "birthday", "op": "lt", "value": "2000-01-01"},
            ]
        }
    )
    assert isinstance(rule, And)
    region, plan, consent, orders, not_nps, born = rule.children
    assert region == Compare("region", "in", ("東京都", "大阪府"), "string")
    assert plan == Compare("attributes.plan", "eq", "gold", "string", "plan")
    assert consent == Consent("email", True)
    assert orders == Aggregate("orders", "gte", 3, 90)
    assert isinstance(not_nps, Not) and not_nps.child == SurveyAnswer("nps", "lte", 6, 30)
    assert born == Compare("birthday", "lt", date(2000, 1, 1), "date")


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"field": "favourite_colour", "value": "red"}, "/rule/field", "unknown field"),
        ({"field": "name; DROP TABLE customers", "value": "x"}, "/rule/field", "unknown field"),
        (
            {"field": "attributes.x'); DROP TABLE customers; --", "value": "x"},
            "/rule/field",
            "attribute key",
        ),
        (
            {"and": [{"consent": "email"}, {"field": "birthday", "op": "gt", "value": 1990}]},
            "/rule/and/1/value",
            "expected a date",
        ),
        (
            {"or": [{"aggregate": "orders", "op": "gte", "value": "three"}]},
            "/rule/or/0/value",
            "expected a number",
        ),
        ({"aggregate": "orders", "op": "gte", "value": 3, "days": 0}, "/rule/days", "days must be"),
        ({"aggregate": "loyalty", "value": 3}, "/rule/aggregate", "unknown aggregate"),
        ({"aggregate": "category_spend", "value": 3}, "/rule/category", "needs 'category'"),
        ({"field": "region", "op": "gt", "value": "a"}, "/rule/op", "does not apply"),
        ({"field": "region", "op": "in", "value": []}, "/rule/value", "list of 1"),
        ({"consent": "carrier_pigeon"}, "/rule/consent", "unknown consent channel"),
        ({"survey": "nps", "op": "lte", "value": 11}, "/rule/value", "from 0 to 10"),
        (
            {"not": {"field": "region", "value": "x", "colour": 1}},
            "/rule/not/colour",
            "unknown key",
        ),
        ({"and": []}, "/rule/and", "non-empty list"),
        ({"banana": 1}, "/rule", "cannot tell"),
        ("region = 'x'", "/rule", "expected a rule object"),
        (
            {"field": "signup_at", "op": "gte", "value": "2025-01-01T00:00"},
            "/rule/value",
            "no UTC offset",
        ),
        (
            {"field": "attributes.vip", "value": {"$ne": 1}},
            "/rule/value",
            "string, number or boolean",
        ),
    ],
)
def test_bad_nodes_are_named_by_their_path(rule: Any, path: str, words: str) -> None:
    error = error_of(rule)
    assert error.path == path
    assert words in error.reason
    assert isinstance(error, ValidationError)
    assert path in str(error)


def test_injection_text_is_just_a_value() -> None:
    rule = parse_rule({"field": "name", "value": "x'; DROP TABLE customers; --"})
    assert rule == Compare("name", "eq", "x'; DROP TABLE customers; --", "string")


def test_a_definition_needs_a_name_and_a_rule() -> None:
    with pytest.raises(SegmentError) as info:
        parse_segment({"name": "vip"})
    assert info.value.path == "/rule"
    with pytest.raises(SegmentError) as info:
        parse_segment({"name": "", "rule": {"consent": "email"}})
    assert info.value.path == "/name"
    assert parse_segment({"name": "VIP 東京", "rule": {"consent": "email"}}).name == "VIP 東京"


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    rule: dict[str, Any] = {"consent": "email"}
    for _ in range(100):
        rule = {"not": rule}
    assert "deeper" in error_of(rule).reason


def test_windows_are_local_calendar_days() -> None:
    # 2025-03-10 00:30 in Tokyo is still 2025-03-09 in UTC.
    now = datetime(2025, 3, 9, 15, 30, tzinfo=UTC)
    start, end = window_bounds(1, now, TOKYO)
    assert start == datetime(2025, 3, 9, 15, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
    # Across the US spring-forward the 7-day window is 7 calendar days, not 168 h.
    ny = ZoneInfo("America/New_York")
    start, end = window_bounds(7, datetime(2025, 3, 12, 12, tzinfo=UTC), ny)
    assert (end - start).total_seconds() == 7 * 24 * 3600 - 3600
