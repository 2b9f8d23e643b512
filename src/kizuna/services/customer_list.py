"""The customer list of the dashboard: search and keyset (cursor) paging.

Paging is by external id (``after=<last id shown>``), which the unique index
on ``external_id`` serves directly, so page 500 costs what page 1 costs; an
OFFSET would read and throw away every earlier row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.services.customers import CANCELLED
from kizuna.store import tables as t

DEFAULT_PAGE = 50
MAX_PAGE = 500


@dataclass(frozen=True)
class CustomerRow:
    """One customer as listed: identity, where they are, and what they bought."""

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    region: str | None
    signup_at: datetime | None
    orders: int
    revenue: int


@dataclass(frozen=True)
class CustomerPage:
    """One page of customers and the cursor of the next (``None`` on the last)."""

    rows: tuple[CustomerRow, ...]
    next_after: str | None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(query: str, fields: tuple[str, ...]) -> sa.Select[Any]:
    c = t.customers
    o = t.orders
    live = sa.and_(o.c.customer_id == c.c.id, o.c.status != CANCELLED)
    orders = sa.select(sa.func.count()).where(live).scalar_subquery()
    revenue = sa.select(sa.func.coalesce(sa.func.sum(o.c.total_amount), 0)).where(live)
    stmt = sa.select(
        c.c.external_id,
        c.c.name,
        c.c.email,
        c.c.phone,
        c.c.region,
        c.c.signup_at,
        orders.label("orders"),
        revenue.scalar_subquery().label("revenue"),
    )
    text = query.strip()
    if text:
        conditions: list[sa.ColumnElement[bool]] = [c.c.external_id == text]
        pattern = _like(text)
        if "id" in fields:
            conditions.append(sa.func.lower(c.c.external_id).like(pattern, escape="\\"))
        if "name" in fields:
            conditions.append(sa.func.lower(c.c.name).like(pattern, escape="\\"))
        if "email" in fields:
            conditions.append(sa.func.lower(c.c.email).like(pattern, escape="\\"))
        stmt = stmt.where(sa.or_(*conditions))
    return stmt


def _row(r: Any) -> CustomerRow:
    return CustomerRow(
        r.external_id,
        r.name,
        r.email,
        r.phone,
        r.region,
        r.signup_at,
        int(r.orders or 0),
        int(r.revenue or 0),
    )


def search_customers(
    engine: sa.Engine,
    query: str = "",
    *,
    after: str | None = None,
    limit: int = DEFAULT_PAGE,
    fields: tuple[str, ...] = ("id", "name", "email"),
) -> CustomerPage:
    """Customers whose id, name or e-mail contains ``query`` (any case), by id.

    ``fields`` narrows what the text is matched against: a role that may not
    see personal data searches by id only, so it cannot probe for an e-mail.
    """
    limit = max(1, min(limit, MAX_PAGE))
    c = t.customers
    stmt = _filtered(query, fields)
    if after:
        stmt = stmt.where(c.c.external_id > after)
    stmt = stmt.order_by(c.c.external_id).limit(limit + 1)
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return CustomerPage(tuple(rows), rows[-1].customer_id if more and rows else None)


def iter_customers(
    engine: sa.Engine,
    query: str = "",
    *,
    fields: tuple[str, ...] = ("id", "name", "email"),
    batch: int = 5_000,
) -> Iterator[CustomerRow]:
    """Every customer matching ``query``, by id, read in keyset batches (for exports)."""
    after: str | None = None
    while True:
        page = search_customers(engine, query, after=after, limit=batch, fields=fields)
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after
