"""Segment fields from the loyalty programme: ``tier`` and ``points_available``.

Registered through the segment registries like any plugin
(:func:`kizuna.domain.segments.register_field` for the rule parser,
:func:`kizuna.automation.segments_sql.register_field_sql` for the compiler),
so rules such as ``{field: tier, value: gold}`` or
``{field: points_available, op: gte, value: 1000}`` work in segments and in
journey conditions.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.automation.segments_sql import ColumnSQL, CompileContext, register_field_sql
from kizuna.domain.segments import FieldSpec, register_field
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t


def tier_sql(_ctx: CompileContext) -> ColumnSQL:
    """The member's current tier; not set for a customer without a points account."""
    a = pt.point_accounts
    return (
        sa.select(a.c.tier)
        .where(a.c.customer_id == t.customers.c.id)
        .correlate(t.customers)
        .scalar_subquery()
    )


def points_available_sql(ctx: CompileContext) -> ColumnSQL:
    """Spendable points at the rule's "now", as the member's own summary shows them.

    Computed from the lots rather than the cached balance, so a pending lot
    whose time has come counts and a lapsed one does not even before the
    scheduled job has run: available and released lots not yet expired,
    less what the member owes. Lapses of the ``inactivity`` policy count
    once the scheduled job (or the member's next write) has applied them.
    """
    lt, a = pt.point_lots.c, pt.point_accounts.c
    lots = (
        sa.select(sa.func.coalesce(sa.func.sum(lt.remaining), 0))
        .where(
            lt.customer_id == t.customers.c.id,
            lt.remaining > 0,
            sa.or_(
                lt.state == "available",
                sa.and_(lt.state == "pending", lt.available_at <= ctx.now),
            ),
            sa.or_(lt.expires_at.is_(None), lt.expires_at > ctx.now),
        )
        .correlate(t.customers)
        .scalar_subquery()
    )
    owed = (
        sa.select(a.debt)
        .where(a.customer_id == t.customers.c.id)
        .correlate(t.customers)
        .scalar_subquery()
    )
    return lots - sa.func.coalesce(owed, 0)


register_field(FieldSpec("tier", "string", "the member's current programme tier"))
register_field_sql("tier", tier_sql)
register_field(
    FieldSpec("points_available", "number", "spendable programme points (balance available now)")
)
register_field_sql("points_available", points_available_sql)
