"""Segments on hand-made data with known membership, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import add, count

from kizuna.bootstrap import Context
from kizuna.domain.clock import local_day_start
from kizuna.domain.segments import parse_segment
from kizuna.errors import Conflict, NotFound, SegmentError
from kizuna.services import segments as svc
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

#: 12:00 on 2025-06-15 in Tokyo.
NOW = datetime(2025, 6, 15, 3, 0, tzinfo=UTC)
INJECTION = "x'; DROP TABLE customers; --"


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def seed(ctx: Context) -> dict[str, int]:
    """A: the engaged gold customer; B: lapsed detractor; C: blank; D: the injection name."""
    tz = ctx.settings.tz
    window_start = local_day_start(date(2025, 6, 15) - timedelta(days=89), tz)
    with ctx.engine.begin() as conn:
        ids = {
            "A": add(conn, t.customers, external_id="A", name="山田", region="東京都",
                     attributes={"plan": "gold", "score": 7.5, "vip": True}),
            "B": add(conn, t.customers, external_id="B", name="Sato", region="大阪府",
                     attributes={"plan": "silver", "score": 3}),
            "C": add(conn, t.customers, external_id="C", name="100% blank"),
            "D": add(conn, t.customers, external_id="D", name=INJECTION, region="東京都"),
        }  # fmt: skip
        a, b = ids["A"], ids["B"]
        add(
            conn,
            t.consents,
            customer_id=a,
            channel="email",
            granted=True,
            changed_at=ago(200),
            source="t",
        )
        add(
            conn,
            t.consents,
            customer_id=b,
            channel="email",
            granted=False,
            changed_at=ago(9),
            source="t",
        )
        root = add(conn, t.categories, external_id="CAT-BEAN", name="Beans")
        child = add(conn, t.categories, external_id="CAT-BEAN-ETH", name="Ethiopia", parent_id=root)
        other = add(conn, t.categories, external_id="CAT-TEA", name="Tea")
        bean = add(conn, t.products, external_id="P1", name="Yirgacheffe", category_id=child)
        tea = add(conn, t.products, external_id="P2", name="Sencha", category_id=other)
        orders = [
            (a, ago(1), "completed", 5000, [(bean, 5000)]),
            (a, ago(30), "completed", 1000, [(tea, 1000)]),
            (a, window_start, "completed", 700, [(tea, 700)]),  # first instant of the window
            (a, ago(2), "cancelled", 9000, [(bean, 9000)]),
            (b, ago(3), "completed", 800, [(tea, 800)]),
            (b, ago(4), "completed", 800, [(tea, 800)]),
            (b, window_start - timedelta(seconds=1), "completed", 800, [(bean, 800)]),
        ]
        for n, (cid, at_, status, total, lines) in enumerate(orders):
            oid = add(conn, t.orders, external_id=f"O{n}", customer_id=cid, ordered_at=at_,
                      status=status, total_amount=total)  # fmt: skip
            for line_no, (product, amount) in enumerate(lines, 1):
                add(conn, t.order_lines, order_id=oid, customer_id=cid, line_no=line_no,
                    product_id=product, quantity=1, unit_price=amount, amount=amount)  # fmt: skip
        ev = add(
            conn,
            t.community_events,
            external_id="E1",
            name="Cupping",
            kind="meetup",
            starts_at=ago(10),
        )
        add(conn, t.community_activity, external_id="CA1", customer_id=a, kind="event_attendance",
            community_event_id=ev, occurred_at=ago(10))  # fmt: skip
        add(conn, t.community_activity, external_id="CA2", customer_id=b, kind="event_registration",
            community_event_id=ev, occurred_at=ago(12))  # fmt: skip
        for n, (cid, kind, score, when) in enumerate(
            [
                (a, "nps", 5, ago(10)),
                (b, "nps", 9, ago(5)),
                (b, "nps", 3, ago(40)),
                (b, "csat", 1, ago(1)),
            ]
        ):
            add(conn, t.survey_answers, external_id=f"S{n}", customer_id=cid, kind=kind, score=score,
                answered_at=when)  # fmt: skip
    return ids


CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"aggregate": "orders", "op": "gte", "value": 3, "days": 90}, {"A"}),
    ({"aggregate": "orders", "op": "gte", "value": 3}, {"A", "B"}),
    ({"aggregate": "orders", "op": "eq", "value": 0}, {"C", "D"}),
    ({"aggregate": "spend", "op": "gte", "value": 6700, "days": 90}, {"A"}),
    (
        {"aggregate": "category_spend", "category": "CAT-BEAN", "op": "gte", "value": 800},
        {"A", "B"},
    ),
    (
        {
            "aggregate": "category_spend",
            "category": "CAT-BEAN",
            "op": "gte",
            "value": 1,
            "days": 90,
        },
        {"A"},
    ),
    ({"aggregate": "category_spend", "category": "NO-SUCH", "op": "gt", "value": 0}, set()),
    ({"aggregate": "attended_events", "op": "gte", "value": 1, "days": 30}, {"A"}),
    ({"survey": "nps", "op": "lte", "value": 6, "days": 30}, {"A"}),
    ({"survey": "nps", "op": "lte", "value": 6}, {"A", "B"}),
    ({"consent": "email"}, {"A"}),
    ({"consent": "email", "granted": False}, {"B", "C", "D"}),
    ({"field": "attributes.plan", "value": "gold"}, {"A"}),
    ({"field": "attributes.score", "op": "gt", "value": 5}, {"A"}),
    ({"field": "attributes.vip", "value": True}, {"A"}),
    ({"field": "attributes.plan", "op": "is_not_set"}, {"C", "D"}),
    ({"field": "region", "op": "ne", "value": "東京都"}, {"B", "C"}),
    ({"not": {"field": "region", "value": "東京都"}}, {"B", "C"}),
    ({"field": "region", "op": "is_not_set"}, {"C"}),
    ({"field": "name", "op": "contains", "value": "%"}, {"C"}),
    ({"field": "name", "value": INJECTION}, {"D"}),
    (
        {
            "or": [
                {"and": [{"consent": "email"}, {"field": "region", "value": "東京都"}]},
                {"survey": "csat", "op": "eq", "value": 1, "days": 7},
            ]
        },
        {"A", "B"},
    ),  # fmt: skip
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_rules_select_exactly_the_known_members(
    workspace: Context, rule: dict[str, Any], expected: set[str]
) -> None:
    ids = seed(workspace)
    names = {v: k for k, v in ids.items()}
    got = svc.evaluate(parse_segment({"name": "s", "rule": rule}), uow(workspace), now=NOW)
    assert {names[i] for i in got} == expected


def test_injection_stays_a_bound_value(workspace: Context) -> None:
    seed(workspace)
    result = svc.preview(
        {"name": "x", "rule": {"field": "name", "value": INJECTION}}, uow(workspace), now=NOW
    )
    assert result.count == 1 and result.sample[0]["name"] == INJECTION
    assert count(workspace, "customers") == 4


def test_refresh_records_every_entry_and_exit(workspace: Context) -> None:
    ids = seed(workspace)
    doc = {"name": "tokyo", "rule": {"field": "region", "value": "東京都"}}
    preview = svc.preview(doc, uow(workspace), sample=1, now=NOW)
    assert preview.count == 2 and [r["external_id"] for r in preview.sample] == ["A"]
    svc.handle_save(svc.SaveSegment(doc), uow(workspace), now=NOW)
    with pytest.raises(Conflict):
        svc.handle_save(svc.SaveSegment(doc), uow(workspace), now=NOW)

    first = svc.handle_refresh(svc.RefreshSegment("tokyo"), uow(workspace), now=NOW)
    assert (first.entered, first.exited, first.members) == (2, 0, 2)
    with workspace.engine.begin() as conn:
        conn.execute(
            sa.update(t.customers).where(t.customers.c.id == ids["D"]).values(region="大阪府")
        )
        conn.execute(
            sa.update(t.customers).where(t.customers.c.id == ids["C"]).values(region="東京都")
        )
    second = svc.handle_refresh(
        svc.RefreshSegment("tokyo"), uow(workspace), now=NOW + timedelta(hours=1)
    )
    assert (second.entered, second.exited, second.members) == (1, 1, 2)
    third = svc.handle_refresh(
        svc.RefreshSegment("tokyo"), uow(workspace), now=NOW + timedelta(hours=2)
    )
    assert (third.entered, third.exited, third.members) == (0, 0, 2)

    assert set(svc.members("tokyo", uow(workspace))) == {ids["A"], ids["C"]}
    with workspace.engine.connect() as conn:
        changes = conn.execute(
            sa.select(at.segment_changes.c.customer_id, at.segment_changes.c.change, at.segment_changes.c.refresh_id)
            .order_by(at.segment_changes.c.id)
        ).all()  # fmt: skip
    assert [(c, ch) for c, ch, _ in changes] == [
        (ids["A"], "entered"), (ids["D"], "entered"), (ids["C"], "entered"), (ids["D"], "exited"),
    ]  # fmt: skip
    assert [r for *_, r in changes] == [first.refresh_id] * 2 + [second.refresh_id] * 2
    listed = svc.list_segments(uow(workspace))
    assert [(s["name"], s["member_count"]) for s in listed] == [("tokyo", 2)]


def test_replacing_a_rule_and_refreshing_all(workspace: Context) -> None:
    seed(workspace)
    svc.handle_save(
        svc.SaveSegment({"name": "email", "rule": {"consent": "email"}}), uow(workspace), now=NOW
    )
    svc.handle_save(
        svc.SaveSegment(
            {"name": "email", "rule": {"consent": "email", "granted": False}}, replace=True
        ),
        uow(workspace),
        now=NOW,
    )
    (result,) = svc.refresh_all(uow(workspace), now=NOW)
    assert result.members == 3
    with pytest.raises(NotFound):
        svc.handle_refresh(svc.RefreshSegment("nope"), uow(workspace), now=NOW)


def test_definitions_load_from_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: lapsed\nrule:\n  and:\n    - consent: email\n    - aggregate: orders\n      op: eq\n      value: 0\n"
        "      days: 180\n",
        encoding="utf-8",
    )
    assert parse_segment(svc.load_definition(tmp_path / "s.yaml")).name == "lapsed"
    (tmp_path / "s.json").write_text('{"name": "x", "rule": {"consent": "emai"}}', encoding="utf-8")
    with pytest.raises(SegmentError) as info:
        parse_segment(svc.load_definition(tmp_path / "s.json"))
    assert info.value.path == "/rule/consent"
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SegmentError, match="not valid YAML"):
        svc.load_definition(tmp_path / "bad.yaml")
