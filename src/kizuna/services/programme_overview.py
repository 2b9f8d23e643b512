"""Read-only summaries of the programme for the dashboard: coupon batches.

Coupon codes are bearer secrets, so the dashboard lists batches (how many
codes, how many used) and never the codes themselves.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.store import programme_tables as pt


def coupon_batches(conn: sa.Connection) -> list[dict[str, Any]]:
    """One row per coupon batch: kind, value, codes, uses and validity, newest first."""
    c = pt.coupons.c
    q = (
        sa.select(
            c.batch,
            c.kind,
            c.value,
            sa.func.min(c.min_spend).label("min_spend"),
            sa.func.count().label("codes"),
            sa.func.sum(c.uses).label("uses"),
            sa.func.sum(sa.case((c.uses > 0, 1), else_=0)).label("used_codes"),
            sa.func.sum(sa.case((c.customer_id.is_not(None), 1), else_=0)).label("bound"),
            sa.func.min(c.valid_from).label("valid_from"),
            sa.func.max(c.valid_until).label("valid_until"),
            sa.func.max(c.created_at).label("created_at"),
        )
        .group_by(c.batch, c.kind, c.value)
        .order_by(sa.func.max(c.created_at).desc(), c.batch)
    )
    return [
        {**r._mapping, "uses": int(r.uses or 0), "used_codes": int(r.used_codes or 0),
         "bound": int(r.bound or 0)}
        for r in conn.execute(q)
    ]  # fmt: skip
