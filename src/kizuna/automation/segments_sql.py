"""Compile a segment rule tree to a SQLAlchemy Core boolean over ``customers``.

Every value in a rule becomes a bound parameter and every field name is
looked up in a registry before it is turned into a column, so no text a
marketer typed ever becomes SQL. The result is a ``WHERE`` clause over the
``customers`` table; aggregates are correlated subqueries (one index range
scan per customer on ``(customer_id, ordered_at)`` and friends).

Later areas add fields and aggregates (the latest scoring run, tier, points)
with :func:`register_field_sql` / :func:`register_aggregate_sql` together with
their domain specs in :mod:`kizuna.domain.segments`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.domain.clock import local_date, local_day_start
from kizuna.domain.segments import (
    FIELDS,
    Aggregate,
    And,
    Compare,
    Consent,
    Not,
    Or,
    Rule,
    SurveyAnswer,
    window_bounds,
)
from kizuna.errors import SegmentError
from kizuna.store import tables as t

ColumnSQL = sa.ColumnElement[Any]


@dataclass(frozen=True)
class CompileContext:
    """What a rule needs besides itself: the moment "now" and the business timezone."""

    now: datetime
    tz: ZoneInfo
    dialect: str

    def window(self, days: int | None) -> tuple[datetime, datetime] | None:
        return None if days is None else window_bounds(days, self.now, self.tz)


FieldSQL = Callable[[CompileContext], ColumnSQL]
AggregateSQL = Callable[[Aggregate, CompileContext], ColumnSQL]

FIELD_SQL: dict[str, FieldSQL] = {}
AGGREGATE_SQL: dict[str, AggregateSQL] = {}


def register_field_sql(name: str, sql: FieldSQL) -> None:
    """The column expression of a field named in :data:`kizuna.domain.segments.FIELDS`."""
    FIELD_SQL[name] = sql


def register_aggregate_sql(name: str, sql: AggregateSQL) -> None:
    """The per-customer scalar subquery of an aggregate named in ``AGGREGATES``."""
    AGGREGATE_SQL[name] = sql


def _customer_column(name: str) -> FieldSQL:
    def sql(_ctx: CompileContext) -> ColumnSQL:
        return t.customers.c[name]

    return sql


for _name in FIELDS:
    register_field_sql(_name, _customer_column(_name))


def _in_window(column: sa.ColumnElement[Any], ctx: CompileContext, days: int | None) -> list[Any]:
    bounds = ctx.window(days)
    if bounds is None:
        return []
    return [column >= bounds[0], column < bounds[1]]


def _completed_orders(agg: Aggregate, ctx: CompileContext) -> list[Any]:
    o = t.orders
    return [
        o.c.customer_id == t.customers.c.id,
        o.c.status == "completed",
        *_in_window(o.c.ordered_at, ctx, agg.days),
    ]


def _orders(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    return (
        sa.select(sa.func.count())
        .select_from(t.orders)
        .where(*_completed_orders(agg, ctx))
        .scalar_subquery()
    )


def _spend(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    return (
        sa.select(sa.func.coalesce(sa.func.sum(t.orders.c.total_amount), 0))
        .where(*_completed_orders(agg, ctx))
        .scalar_subquery()
    )


def _category_spend(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    params = dict(agg.params)
    cat = t.categories
    root = sa.select(cat.c.id).where(cat.c.external_id == params["category"]).scalar_subquery()
    ids = sa.select(cat.c.id).where(sa.or_(cat.c.id == root, cat.c.parent_id == root))
    ol, o = t.order_lines, t.orders
    return (
        sa.select(sa.func.coalesce(sa.func.sum(ol.c.amount), 0))
        .select_from(
            ol.join(o, o.c.id == ol.c.order_id).join(t.products, t.products.c.id == ol.c.product_id)
        )
        .where(*_completed_orders(agg, ctx), t.products.c.category_id.in_(ids))
        .scalar_subquery()
    )


def _attended(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    ca = t.community_activity
    return (
        sa.select(sa.func.count())
        .select_from(ca)
        .where(
            ca.c.customer_id == t.customers.c.id,
            ca.c.kind == "event_attendance",
            *_in_window(ca.c.occurred_at, ctx, agg.days),
        )
        .scalar_subquery()
    )


def _events(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    e = t.events
    return (
        sa.select(sa.func.count())
        .select_from(e)
        .where(
            e.c.customer_id == t.customers.c.id,
            e.c.type == dict(agg.params)["type"],
            *_in_window(e.c.occurred_at, ctx, agg.days),
        )
        .scalar_subquery()
    )


def _reviews(agg: Aggregate, ctx: CompileContext) -> ColumnSQL:
    r = t.reviews
    return (
        sa.select(sa.func.count())
        .select_from(r)
        .where(r.c.customer_id == t.customers.c.id, *_in_window(r.c.posted_at, ctx, agg.days))
        .scalar_subquery()
    )


for _agg_name, _agg_sql in (
    ("orders", _orders),
    ("spend", _spend),
    ("category_spend", _category_spend),
    ("attended_events", _attended),
    ("events", _events),
    ("reviews", _reviews),
):
    register_aggregate_sql(_agg_name, _agg_sql)


def _order_op(left: ColumnSQL, op: str, value: Any) -> ColumnSQL:
    # Comparing with the plain value binds it with the column's own type
    # (UTCDateTime converts to UTC; dates become ISO text on SQLite).
    right = value
    match op:
        case "eq":
            return left == right
        case "ne":
            return left != right
        case "lt":
            return left < right
        case "lte":
            return left <= right
        case "gt":
            return left > right
        case "gte":
            return left >= right
    raise SegmentError("/", f"operator {op!r} is not a comparison")


def _attribute(rule: Compare) -> ColumnSQL:
    doc = t.customers.c.attributes[rule.attribute]
    if rule.type == "number":
        return doc.as_float()
    if rule.type == "bool":
        return doc.as_boolean()
    return doc.as_string()


def _compare(rule: Compare, ctx: CompileContext) -> ColumnSQL:
    if rule.attribute is not None:
        column = _attribute(rule)
    else:
        sql = FIELD_SQL.get(rule.field)
        if sql is None:
            raise SegmentError("/", f"field {rule.field!r} has no SQL registered")
        column = sql(ctx)
    match rule.op:
        case "is_set":
            return column.is_not(None)
        case "is_not_set":
            return column.is_(None)
        case "in":
            return column.in_(list(rule.value))
        case "not_in":
            return sa.and_(column.is_not(None), column.not_in(list(rule.value)))
        case "contains":
            return column.contains(rule.value, autoescape=True)
        case "starts_with":
            return column.startswith(rule.value, autoescape=True)
        case "within_last_days":
            today = local_date(ctx.now, ctx.tz)
            first = today - timedelta(days=int(rule.value) - 1)
            if rule.type == "date":
                return sa.and_(column >= first, column <= today)
            return sa.and_(column >= local_day_start(first, ctx.tz), column <= ctx.now)
    value = rule.value
    if rule.type == "datetime":
        return _order_op(column, rule.op, value)
    if rule.op == "ne":
        # SQL's NULL <> x is unknown; a marketer's "not Tokyo" includes "no region".
        return sa.or_(column.is_(None), column != value)
    return _order_op(column, rule.op, value)


def _consent(rule: Consent) -> ColumnSQL:
    c = t.consents
    granted = sa.exists().where(
        c.c.customer_id == t.customers.c.id, c.c.channel == rule.channel, c.c.granted.is_(True)
    )
    return granted if rule.granted else sa.not_(granted)


def _survey(rule: SurveyAnswer, ctx: CompileContext) -> ColumnSQL:
    s = t.survey_answers
    return sa.exists().where(
        s.c.customer_id == t.customers.c.id,
        s.c.kind == rule.kind,
        _order_op(s.c.score, rule.op, rule.value),
        *_in_window(s.c.answered_at, ctx, rule.days),
    )


def compile_rule(rule: Rule, ctx: CompileContext) -> ColumnSQL:
    """A boolean SQL expression over ``customers`` that is true for members."""
    if isinstance(rule, And):
        return sa.and_(*(compile_rule(child, ctx) for child in rule.children))
    if isinstance(rule, Or):
        return sa.or_(*(compile_rule(child, ctx) for child in rule.children))
    if isinstance(rule, Not):
        # NOT over a comparison with a NULL column stays unknown in SQL; coalesce
        # makes "not (region = 'x')" include customers with no region.
        return sa.not_(sa.func.coalesce(compile_rule(rule.child, ctx), sa.false()))
    if isinstance(rule, Compare):
        return _compare(rule, ctx)
    if isinstance(rule, Consent):
        return _consent(rule)
    if isinstance(rule, Aggregate):
        sql = AGGREGATE_SQL.get(rule.measure)
        if sql is None:
            raise SegmentError("/", f"aggregate {rule.measure!r} has no SQL registered")
        return _order_op(sql(rule, ctx), rule.op, rule.value)
    if isinstance(rule, SurveyAnswer):
        return _survey(rule, ctx)
    raise SegmentError("/", f"unsupported rule node {rule!r}")


def members_query(rule: Rule, ctx: CompileContext) -> sa.Select[int]:
    """``SELECT customers.id WHERE <rule>``, for previews, refreshes and journeys."""
    return sa.select(t.customers.c.id).where(compile_rule(rule, ctx))
