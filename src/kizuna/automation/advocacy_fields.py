"""Segment fields of the advocacy area.

``ambassador_status`` (invited, accepted, active, alumni, declined; not set
for other customers), ``referrals_rewarded`` (referrals the customer made
that were rewarded) and ``reviews_approved`` (their approved reviews and UGC
posts), so rules such as ``{field: ambassador_status, value: active}`` or
``{field: referrals_rewarded, op: gte, value: 3}`` work in segments and in
journey conditions.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.automation.segments_sql import ColumnSQL, CompileContext, register_field_sql
from kizuna.domain.segments import FieldSpec, register_field
from kizuna.store import advocacy_tables as at
from kizuna.store import tables as t


def ambassador_status_sql(_ctx: CompileContext) -> ColumnSQL:
    a = at.ambassadors.c
    return (
        sa.select(a.status)
        .where(a.customer_id == t.customers.c.id)
        .correlate(t.customers)
        .scalar_subquery()
    )


def referrals_rewarded_sql(_ctx: CompileContext) -> ColumnSQL:
    r = t.referrals.c
    return (
        sa.select(sa.func.count())
        .where(r.referrer_id == t.customers.c.id, r.status == "rewarded")
        .correlate(t.customers)
        .scalar_subquery()
    )


def reviews_approved_sql(_ctx: CompileContext) -> ColumnSQL:
    m = at.review_moderation.c
    return (
        sa.select(sa.func.count())
        .where(m.customer_id == t.customers.c.id, m.status == "approved")
        .correlate(t.customers)
        .scalar_subquery()
    )


register_field(FieldSpec("ambassador_status", "string", "status in the ambassador programme"))
register_field_sql("ambassador_status", ambassador_status_sql)
register_field(
    FieldSpec("referrals_rewarded", "number", "referrals the customer made that were rewarded")
)
register_field_sql("referrals_rewarded", referrals_rewarded_sql)
register_field(FieldSpec("reviews_approved", "number", "approved reviews and UGC posts"))
register_field_sql("reviews_approved", reviews_approved_sql)
