"""Segment fields from the programme (tier, points_available) on hand-made ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain.segments import parse_segment
from kizuna.errors import SegmentError
from kizuna.services import segments
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

NOW = datetime(2026, 6, 15, 3, tzinfo=UTC)
PAST, FUTURE = NOW - timedelta(days=1), NOW + timedelta(days=1)


def lot(conn: sa.Connection, cid: int, points: int, state: str, **times: Any) -> None:
    add(conn, pt.point_lots, customer_id=cid, points=points, remaining=points, state=state,
        earned_at=NOW - timedelta(days=30), available_at=times.get("available_at", PAST),
        expires_at=times.get("expires_at"), source="order:x")  # fmt: skip


@pytest.fixture
def ws(workspace: Context) -> Context:
    with workspace.engine.begin() as conn:
        ids = {n: add(conn, t.customers, external_id=n, name=n) for n in "abcdef"}
        for name, tier, debt in (("a", "gold", 0), ("b", "silver", 0), ("c", "gold", 0),
                                 ("d", None, 100), ("f", "silver", 0)):  # fmt: skip
            add(conn, pt.point_accounts, customer_id=ids[name], tier=tier, debt=debt,
                member_since=NOW - timedelta(days=400))  # fmt: skip
        lot(conn, ids["a"], 150, "available", expires_at=FUTURE)
        lot(conn, ids["a"], 40, "available", expires_at=PAST)  # lapsed, job not run yet
        lot(conn, ids["b"], 200, "pending", available_at=PAST)  # due, job not run yet
        lot(conn, ids["b"], 999, "pending", available_at=FUTURE)  # not yet spendable
        lot(conn, ids["c"], 300, "expired")
        lot(conn, ids["d"], 150, "available")  # 150 less 100 owed
        lot(conn, ids["f"], 1000, "redeemed")
    return workspace


def select(ctx: Context, rule: dict[str, Any]) -> list[str]:
    definition = parse_segment({"name": "s", "rule": rule})
    ids = segments.evaluate(definition, UnitOfWork(ctx.engine, ctx.settings), NOW)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.customers.c.external_id).where(t.customers.c.id.in_(ids))
        ).scalars()
        return sorted(rows)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "tier", "value": "gold"}, ["a", "c"]),
        ({"field": "tier", "op": "in", "value": ["gold", "silver"]}, ["a", "b", "c", "f"]),
        ({"field": "tier", "op": "ne", "value": "gold"}, ["b", "d", "e", "f"]),
        ({"field": "tier", "op": "is_not_set"}, ["d", "e"]),
        ({"field": "points_available", "op": "gte", "value": 150}, ["a", "b"]),
        ({"field": "points_available", "op": "eq", "value": 50}, ["d"]),
        ({"field": "points_available", "op": "eq", "value": 0}, ["c", "e", "f"]),
        (
            {
                "and": [
                    {"field": "tier", "value": "gold"},
                    {"field": "points_available", "op": "gt", "value": 0},
                ]
            },
            ["a"],
        ),  # fmt: skip
    ],
)
def test_tier_and_spendable_points_select_the_right_members(
    ws: Context, rule: dict[str, Any], expected: list[str]
) -> None:
    assert select(ws, rule) == expected


def test_points_available_counts_due_releases_and_drops_lapses_at_the_rule_moment(
    ws: Context,
) -> None:
    later = NOW + timedelta(days=2)  # b's second lot is released by then
    definition = parse_segment(
        {"name": "s", "rule": {"field": "points_available", "op": "gte", "value": 1000}}
    )
    assert segments.evaluate(definition, UnitOfWork(ws.engine, ws.settings), NOW) == []
    assert len(segments.evaluate(definition, UnitOfWork(ws.engine, ws.settings), later)) == 1


def test_programme_fields_are_typed_like_any_other_field() -> None:
    with pytest.raises(SegmentError, match="expected a number"):
        parse_segment({"name": "s", "rule": {"field": "points_available", "value": "lots"}})
    with pytest.raises(SegmentError, match="tier"):
        parse_segment({"name": "s", "rule": {"field": "tier", "op": "gt", "value": "gold"}})
