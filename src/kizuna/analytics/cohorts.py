"""Cohort retention by first-purchase month.

A cohort is the customers whose first purchase fell in one local month; the
matrix shows, for each cohort and each month since (0 = the first month),
how many of them bought in that month and what share of the cohort that is.
Month 0 is 100% by construction; the diagonal fall-off is the retention
curve the shifted-Beta-Geometric model projects for subscriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.analytics.summary import require

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd


def cohort_retention(
    orders: ir.Table,
    *,
    end_month: int | None = None,
    customer: str = "customer_id",
    month: str = "ordered_at_month",
) -> ir.Table:
    """Long form: ``cohort, age, customers, cohort_size, share``, one row per cell with buyers.

    ``end_month`` (exclusive) drops purchases from that month on.
    """
    require(orders, customer, month, what="orders")
    o = orders.select(customer_id=orders[customer], month=orders[month])
    if end_month is not None:
        o = o.filter(o.month < end_month)
    active = o.distinct()
    first = active.group_by("customer_id").aggregate(cohort=active.month.min())
    sizes = first.group_by("cohort").aggregate(cohort_size=first.count())
    cells = active.join(first, "customer_id")
    cells = cells.group_by(cohort=cells.cohort, age=cells.month - cells.cohort).aggregate(
        customers=cells.count()
    )
    out = cells.join(sizes, "cohort")
    return out.mutate(
        share=out.customers.cast("float64") / out.cohort_size.cast("float64")
    ).order_by(["cohort", "age"])


def as_matrix(long: pd.DataFrame, value: str = "share") -> pd.DataFrame:
    """The long form pivoted: cohorts (``YYYY-MM``) down, months since first purchase across."""
    from kizuna.analytics.kpi import month_label

    matrix = long.pivot(index="cohort", columns="age", values=value)
    matrix.index = [month_label(int(m)) for m in matrix.index]
    sizes = long.groupby("cohort")["cohort_size"].first()
    matrix.insert(0, "customers", sizes.to_numpy())
    return matrix
