"""Proof that the cached balances are what the ledger says.

Balances on ``point_accounts`` and ``remaining`` on lots are caches kept for
speed; these set-based queries prove each equals the sum of its entries, so
a cache can never drift unnoticed.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt


def check_all(uow: UnitOfWork) -> list[str]:
    """Every disagreement between caches and entries (empty: the books are exact)."""
    e, a, lt, r = pt.ledger_entries.c, pt.point_accounts.c, pt.point_lots.c, pt.point_redemptions.c
    problems: list[str] = []
    sums = (
        sa.select(
            e.customer_id,
            sa.func.sum(e.pending).label("pending"),
            sa.func.sum(e.available).label("available"),
            sa.func.sum(e.reserved).label("reserved"),
            sa.func.sum(e.debt).label("debt"),
        )
        .group_by(e.customer_id)
        .subquery()
    )
    q = sa.select(
        a.customer_id,
        a.pending,
        a.available,
        a.reserved,
        a.debt,
        sums.c.pending.label("sp"),
        sums.c.available.label("sa"),
        sums.c.reserved.label("sr"),
        sums.c.debt.label("sd"),
    ).select_from(pt.point_accounts.outerjoin(sums, sums.c.customer_id == a.customer_id))
    for row in uow.conn.execute(q):
        cached = (row.pending, row.available, row.reserved, row.debt)
        summed = tuple(int(x or 0) for x in (row.sp, row.sa, row.sr, row.sd))
        if cached != summed:
            problems.append(
                f"customer {row.customer_id}: cached (pending, available, reserved, owed) {cached} != entries {summed}"
            )
        if row.debt < 0:
            problems.append(f"customer {row.customer_id}: negative debt {row.debt}")
    lot_sums = (
        sa.select(e.lot_id, sa.func.sum(e.lot_delta).label("total"))
        .where(e.lot_id.is_not(None))
        .group_by(e.lot_id)
        .subquery()
    )
    q2 = (
        sa.select(lt.id, lt.remaining, lot_sums.c.total)
        .select_from(pt.point_lots.outerjoin(lot_sums, lot_sums.c.lot_id == lt.id))
        .where(lt.remaining != sa.func.coalesce(lot_sums.c.total, 0))
    )
    problems += [
        f"lot {row.id}: remaining {row.remaining} != entries {row.total}"
        for row in uow.conn.execute(q2)
    ]
    lots = (
        sa.select(
            lt.customer_id,
            sa.func.sum(sa.case((lt.state == "pending", lt.remaining), else_=0)).label("p"),
            sa.func.sum(sa.case((lt.state == "available", lt.remaining), else_=0)).label("av"),
        )
        .group_by(lt.customer_id)
        .subquery()
    )
    q3 = sa.select(a.customer_id, a.pending, a.available, a.debt, lots.c.p, lots.c.av).select_from(
        pt.point_accounts.outerjoin(lots, lots.c.customer_id == a.customer_id)
    )
    for lot_row in uow.conn.execute(q3):
        if (
            lot_row.pending != int(lot_row.p or 0)
            or lot_row.available != int(lot_row.av or 0) - lot_row.debt
        ):
            problems.append(
                f"customer {lot_row.customer_id}: buckets disagree with lots (pending "
                f"{lot_row.pending} vs {lot_row.p}, available {lot_row.available} vs "
                f"{lot_row.av} - owed {lot_row.debt})"
            )
    held = (
        sa.select(r.customer_id, sa.func.sum(r.points).label("held"))
        .where(r.state == "reserved")
        .group_by(r.customer_id)
        .subquery()
    )
    q4 = (
        sa.select(a.customer_id, a.reserved, held.c.held)
        .select_from(pt.point_accounts.outerjoin(held, held.c.customer_id == a.customer_id))
        .where(a.reserved != sa.func.coalesce(held.c.held, 0))
    )
    problems += [
        f"customer {row.customer_id}: reserved {row.reserved} != open reservations {row.held}"
        for row in uow.conn.execute(q4)
    ]
    return problems
