"""Columns out of the system of record into Arrow, as cheaply as the driver allows.

DuckDB cannot attach SQLite or PostgreSQL here (its scanner extensions are
downloaded at run time), so the analytics read the few columns they need
into Arrow and run on those. SQLite rows come through a raw cursor in
batches, converted by Arrow a column at a time; PostgreSQL streams
``COPY (SELECT ...) TO STDOUT`` as CSV into Arrow's CSV reader.

Instants leave the database as UTC and get two derived integer columns in
the workspace timezone: ``day`` (local days since 1970-01-01) and ``month``
(local months since year 0, ``year * 12 + month - 1``). Every analytic works
on those integers, which every Ibis backend handles the same way, so local
months are computed once, here, with the zone's DST rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from kizuna.services.customers import CANCELLED
from kizuna.store import tables as t
from kizuna.store.arrow_io import select_to_arrow

Kind = Literal["int", "float", "text", "instant", "bool"]


@dataclass(frozen=True)
class Col:
    """One extracted column: its name, SQL expression and kind."""

    name: str
    expr: sa.ColumnElement[Any]
    kind: Kind = "int"


def _sql(col: Col, dialect: str) -> sa.ColumnElement[Any]:
    if col.kind == "instant" and dialect == "postgresql":
        micros = sa.func.round(sa.extract("epoch", col.expr) * 1_000_000)
        return sa.cast(micros, sa.BigInteger).label(col.name)
    if col.kind == "bool":
        return sa.cast(col.expr, sa.Integer).label(col.name)
    if col.kind == "instant":
        return sa.type_coerce(col.expr, sa.String()).label(col.name)
    return col.expr.label(col.name)


def _wire_type(kind: Kind, dialect: str) -> pa.DataType:
    if kind == "instant":
        return pa.int64() if dialect == "postgresql" else pa.string()
    return {"int": pa.int64(), "float": pa.float64(), "text": pa.string(), "bool": pa.int64()}[kind]


def fetch(
    conn: sa.Connection,
    cols: Sequence[Col],
    source: sa.FromClause,
    where: Sequence[sa.ColumnElement[bool]] = (),
    timezone: str = "UTC",
) -> pa.Table:
    """Run one SELECT and return its columns as an Arrow table.

    ``instant`` columns come back as ``timestamp[us, UTC]`` followed by
    ``<name>_day`` and ``<name>_month`` integers in ``timezone``.
    """
    dialect = conn.dialect.name
    query = sa.select(*(_sql(c, dialect) for c in cols)).select_from(source).where(*where)
    wire = [_wire_type(c.kind, dialect) for c in cols]
    table = select_to_arrow(conn, query, [c.name for c in cols], wire)
    return _finish(table, cols, timezone)


def _finish(table: pa.Table, cols: Sequence[Col], timezone: str) -> pa.Table:
    out: dict[str, pa.ChunkedArray] = {}
    for col in cols:
        column = table[col.name]
        if col.kind == "instant":
            if pa.types.is_string(column.type):
                column = column.cast(pa.timestamp("us"))
            utc = column.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
            local = pc.local_timestamp(utc.cast(pa.timestamp("us", tz=timezone)))
            out[col.name] = utc
            out[f"{col.name}_day"] = local.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
            out[f"{col.name}_month"] = pc.add(
                pc.multiply(pc.year(local), 12), pc.subtract(pc.month(local), 1)
            ).cast(pa.int64())
        elif col.kind == "bool":
            out[col.name] = column.cast(pa.bool_())
        else:
            out[col.name] = column
    return pa.table(out)


def orders(conn: sa.Connection, timezone: str) -> pa.Table:
    """Completed orders with their value net of refunds, one row per order.

    Columns: ``customer_id``, ``ordered_at`` (+ ``_day``, ``_month``),
    ``amount`` (minor units) and ``coupon`` (a coupon was used). Cancelled orders are left out; refunds are
    subtracted from the order they belong to, so a fully returned order
    counts as a purchase worth nothing.
    """
    o, r = t.orders, t.returns
    refunds = (
        sa.select(r.c.order_id, sa.func.sum(r.c.refund_amount).label("refund"))
        .group_by(r.c.order_id)
        .subquery("refunds")
    )
    source = o.outerjoin(refunds, refunds.c.order_id == o.c.id)
    cols = [
        Col("customer_id", o.c.customer_id),
        Col("ordered_at", o.c.ordered_at, "instant"),
        Col("amount", o.c.total_amount - sa.func.coalesce(refunds.c.refund, 0)),
        Col("coupon", o.c.coupon_code.isnot(None), "bool"),
    ]
    return fetch(conn, cols, source, [o.c.status != CANCELLED], timezone)


def customers(conn: sa.Connection) -> pa.Table:
    """``customer_id`` (surrogate) and ``external_id`` of every customer."""
    c = t.customers
    return fetch(conn, [Col("customer_id", c.c.id), Col("external_id", c.c.external_id, "text")], c)


def survey_answers(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id``, ``kind`` (nps, csat, ces), ``score``, ``answered_at`` (+ day, month)."""
    s = t.survey_answers
    cols = [
        Col("customer_id", s.c.customer_id),
        Col("kind", s.c.kind, "text"),
        Col("score", s.c.score),
        Col("answered_at", s.c.answered_at, "instant"),
    ]
    return fetch(conn, cols, s, [], timezone)


def reviews(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id``, ``rating`` (may be null), ``posted_at`` (+ day, month)."""
    r = t.reviews
    cols = [
        Col("customer_id", r.c.customer_id),
        Col("rating", r.c.rating),
        Col("posted_at", r.c.posted_at, "instant"),
    ]
    return fetch(conn, cols, r, [], timezone)


def referrals(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id`` (the referrer) and ``referred_at`` (+ day, month)."""
    r = t.referrals
    cols = [Col("customer_id", r.c.referrer_id), Col("referred_at", r.c.referred_at, "instant")]
    return fetch(conn, cols, r, [], timezone)


def community_activity(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id``, ``kind`` and ``occurred_at`` (+ day, month)."""
    a = t.community_activity
    cols = [
        Col("customer_id", a.c.customer_id),
        Col("kind", a.c.kind, "text"),
        Col("occurred_at", a.c.occurred_at, "instant"),
    ]
    return fetch(conn, cols, a, [], timezone)


def contacts(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id``, ``touchpoint``, ``topic``, ``resolved``, ``satisfaction``, ``opened_at``."""
    c = t.contacts
    cols = [
        Col("customer_id", c.c.customer_id),
        Col("touchpoint", c.c.touchpoint, "text"),
        Col("topic", c.c.topic, "text"),
        Col("resolved", c.c.resolved, "bool"),
        Col("satisfaction", c.c.satisfaction),
        Col("opened_at", c.c.opened_at, "instant"),
    ]
    return fetch(conn, cols, c, [], timezone)


def feedback_comments(conn: sa.Connection, timezone: str) -> pa.Table:
    """``customer_id``, ``text``, ``language``, ``written_at`` (+ day, month) of every comment.

    Free text from survey answers, support contacts and reviews (their body), for the feedback-tone
    signal. Extracted only when that signal has a weight: comments are the
    largest columns in the system of record and personal data.
    """
    parts = []
    sources = (
        (t.survey_answers, "comment", "answered_at"),
        (t.contacts, "comment", "opened_at"),
        (t.reviews, "body", "posted_at"),
    )
    for table, text, at in sources:
        cols = [
            Col("customer_id", table.c.customer_id),
            Col("text", table.c[text], "text"),
            Col("language", table.c.language, "text"),
            Col("written_at", table.c[at], "instant"),
        ]
        where = [table.c[text].is_not(None), table.c[text] != ""]
        parts.append(fetch(conn, cols, table, where, timezone))
    return pa.concat_tables(parts)
