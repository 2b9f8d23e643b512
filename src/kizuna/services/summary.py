"""The workspace summary: what is in the database, at a glance.

``make demo`` and ``kizuna summary`` print it after an import so a person can
see at once whether the data arrived: row counts, the period the orders
cover, and revenue by month.

Months are months of the business, not of UTC: an order at 00:30 on
1 February in Tokyo is February revenue although it is still 31 January in
UTC. The grouping runs in the database; PostgreSQL converts with
``AT TIME ZONE``, SQLite calls :func:`kizuna_local_month`, a Python function
registered on the connection that follows the zone's DST rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.domain.clock import local_date
from kizuna.services.customers import CANCELLED, connected, jsonable
from kizuna.store import tables as t
from kizuna.store.sqlfunctions import ensure_sql_functions, local_month

#: The data tables counted, in the order a person reads them.
COUNTED_TABLES: tuple[str, ...] = (
    "accounts",
    "customers",
    "consents",
    "categories",
    "products",
    "orders",
    "order_lines",
    "returns",
    "events",
    "survey_answers",
    "contacts",
    "community_events",
    "community_activity",
    "trainings",
    "reviews",
    "referrals",
)


@dataclass(frozen=True)
class MonthRevenue:
    """One local month: orders placed, what they paid, what was refunded.

    Refunds count in the month of the return, as in the books: closing a
    month must not change when a customer returns something later.
    """

    month: date
    orders: int
    gross: int
    refunds: int
    net: int


@dataclass(frozen=True)
class Summary:
    """Counts, the order period and revenue by month; money in minor units."""

    counts: dict[str, int]
    customers_with_orders: int
    first_order_on: date | None
    last_order_on: date | None
    gross_revenue: int
    refunds: int
    revenue: int
    revenue_by_month: tuple[MonthRevenue, ...]
    currency: str
    timezone: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, months as ``YYYY-MM``."""
        return {
            "counts": dict(self.counts),
            "customers_with_orders": self.customers_with_orders,
            "first_order_on": jsonable(self.first_order_on),
            "last_order_on": jsonable(self.last_order_on),
            "gross_revenue": self.gross_revenue,
            "refunds": self.refunds,
            "revenue": self.revenue,
            "revenue_by_month": [
                {
                    "month": m.month.strftime("%Y-%m"),
                    "orders": m.orders,
                    "gross": m.gross,
                    "refunds": m.refunds,
                    "net": m.net,
                }
                for m in self.revenue_by_month
            ],
            "currency": self.currency,
            "timezone": self.timezone,
        }


# --- the summary ---------------------------------------------------------------


def _month(text: str) -> date:
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def _counts(conn: sa.Connection) -> dict[str, int]:
    query = sa.select(
        *(
            sa.select(sa.func.count())
            .select_from(t.metadata.tables[name])
            .scalar_subquery()
            .label(name)
            for name in COUNTED_TABLES
        )
    )
    row = conn.execute(query).one()
    return {name: int(row._mapping[name]) for name in COUNTED_TABLES}


def _revenue_by_month(conn: sa.Connection, tz: str) -> tuple[MonthRevenue, ...]:
    o, r = t.orders, t.returns
    dialect = conn.dialect.name
    # Grouping on a subquery's column keeps the bound timezone out of GROUP BY,
    # which PostgreSQL would otherwise see as a different expression.
    placed = (
        sa.select(local_month(o.c.ordered_at, dialect, tz).label("month"), o.c.total_amount)
        .where(o.c.status != CANCELLED)
        .subquery()
    )
    refunded = (
        sa.select(local_month(r.c.returned_at, dialect, tz).label("month"), r.c.refund_amount)
        .select_from(r.join(o, r.c.order_id == o.c.id))
        .where(o.c.status != CANCELLED)
        .subquery()
    )
    months: dict[str, list[int]] = {}
    for month, orders, gross in conn.execute(
        sa.select(placed.c.month, sa.func.count(), sa.func.sum(placed.c.total_amount)).group_by(
            placed.c.month
        )
    ):
        months[month] = [int(orders), int(gross), 0]
    for month, refunds in conn.execute(
        sa.select(refunded.c.month, sa.func.sum(refunded.c.refund_amount)).group_by(
            refunded.c.month
        )
    ):
        months.setdefault(month, [0, 0, 0])[2] = int(refunds)
    return tuple(
        MonthRevenue(_month(m), orders, gross, refunds, gross - refunds)
        for m, (orders, gross, refunds) in sorted(months.items())
    )


def workspace_summary(conn_or_engine: sa.Engine | sa.Connection, settings: Settings) -> Summary:
    """Counts, the period orders cover, buyers and revenue by local month.

    The order period includes cancelled orders, because it describes the
    data; buyers and revenue leave them out, because nothing was bought.
    """
    o = t.orders
    with connected(conn_or_engine) as conn:
        ensure_sql_functions(conn)
        counts = _counts(conn)
        period = conn.execute(
            sa.select(
                sa.func.min(o.c.ordered_at),
                sa.func.max(o.c.ordered_at),
                sa.func.count(sa.distinct(sa.case((o.c.status != CANCELLED, o.c.customer_id)))),
            )
        ).one()
        months = _revenue_by_month(conn, settings.timezone)
    first, last, buyers = period
    tz = settings.tz
    gross = sum(m.gross for m in months)
    refunds = sum(m.refunds for m in months)
    return Summary(
        counts=counts,
        customers_with_orders=int(buyers or 0),
        first_order_on=local_date(first, tz) if first is not None else None,
        last_order_on=local_date(last, tz) if last is not None else None,
        gross_revenue=gross,
        refunds=refunds,
        revenue=gross - refunds,
        revenue_by_month=months,
        currency=settings.currency,
        timezone=settings.timezone,
    )
