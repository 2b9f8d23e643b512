"""Monthly trend series of the loyalty KPIs that need a customer base at each month end.

For every month end of a span, from the same month-end histories the
lifecycle stages are built on (:func:`kizuna.analytics.lifecycle.month_end_histories`),
so the cost grows with customers × months, never with orders × months:

* **historical LTV**: mean cumulative net spend of the customers who had
  bought by the month end;
* **revenue share of loyal customers**: the share of the month's net spend
  that came from customers in the *loyal* or *ambassador* lifecycle stage at
  its end (the monthly, history-only counterpart of the run's "true loyalty"
  share, which needs the behaviour percentiles of one run);
* **mean P(alive)** and the **model-based active customers** (the sum of
  P(alive)): BG/NBD P(alive) (Fader, Hardie & Lee 2008, eq. 1) of every
  customer's history at the month end, with one set of parameters (in
  weeks) for every month, so that the series moves with the histories, not
  with refitting noise. The closed form is an engine expression, so this
  runs on DuckDB and Spark alike.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2008). Computing P(alive) using
the BG/NBD model. http://brucehardie.com/notes/021/
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kizuna.analytics import lifecycle
from kizuna.analytics.summary import require

if TYPE_CHECKING:
    import ibis.expr.types as ir

WEEK_DAYS = 7.0
LOYAL_STAGES = ("loyal", "ambassador")


def p_alive_expr(
    histories: ir.Table, params: Sequence[float], unit_days: float = WEEK_DAYS
) -> ir.FloatingValue:
    """BG/NBD P(alive) of ``histories`` (``purchases, first, last, edge``) as an engine expression.

    x = purchases − 1, t_x = (last − first) / unit, T = (edge − first) / unit;
    P(alive) = 1 / (1 + e^z) with z = ln a − ln(b + x − 1) + (r + x)(ln(α + T) − ln(α + t_x)),
    and 1 for customers without a repeat purchase.
    """
    import ibis

    r, alpha, a, b = (float(v) for v in params)
    h = histories
    x = (h.purchases - 1).cast("float64")
    t_x = (h["last"] - h["first"]).cast("float64") / unit_days
    T = (h.edge - h["first"]).cast("float64") / unit_days
    # b + x − 1 > 0 whenever x ≥ 1 and b > 0; x = 0 is answered by the case below.
    z = (
        math.log(a)
        - ibis.greatest(x + (b - 1.0), 1e-300).ln()
        + (x + r) * ((T + alpha).ln() - (t_x + alpha).ln())
    )
    # 1 / (1 + e^z) without overflow: for z > 0 use e^−z / (1 + e^−z).
    neg = (-z.abs()).exp()
    p = ibis.cases((z > 0, neg / (1.0 + neg)), else_=1.0 / (1.0 + neg))
    return ibis.cases((h.purchases <= 1, ibis.literal(1.0)), else_=p)


def monthly_loyalty_trends(
    orders: ir.Table,
    months: list[int],
    *,
    stages: ir.Table | None = None,
    bgnbd_params: Sequence[float] | None = None,
    end_day: int | None = None,
) -> ir.Table:
    """``month, buyers, historical_ltv, month_revenue, loyal_revenue_share, loyal_customers,
    mean_p_alive, model_active_customers`` per month end.

    ``stages`` are lifecycle snapshots (``customer_id, month, stage``) of the
    same months; without them the loyal columns are null. Without
    ``bgnbd_params`` the P(alive) columns are null.
    """
    import ibis

    require(orders, "customer_id", "ordered_at_day", "ordered_at_month", "amount", what="orders")
    hist = lifecycle.month_end_histories(orders, months, end_day)
    if bgnbd_params is not None:
        hist = hist.mutate(p_alive=p_alive_expr(hist, bgnbd_params))
    metrics = {
        "buyers": hist.count(),
        "historical_ltv": hist.spend.cast("float64").mean(),
    }
    if bgnbd_params is not None:
        metrics["mean_p_alive"] = hist.p_alive.mean()
        metrics["model_active_customers"] = hist.p_alive.sum()
    base = hist.group_by("month").aggregate(**metrics)
    if bgnbd_params is None:
        base = base.mutate(
            mean_p_alive=ibis.null("float64"), model_active_customers=ibis.null("float64")
        )
    activity = lifecycle.monthly_activity(orders)
    if end_day is not None:
        # The month of ``end_day`` counts only up to it, as its snapshot does.
        activity = lifecycle.monthly_activity(orders.filter(orders.ordered_at_day < end_day))
    in_span = activity.filter(activity.pmonth.isin(list(months)))
    if stages is not None:
        require(stages, "customer_id", "month", "stage", what="lifecycle stages")
        loyal = stages.filter(stages.stage.isin(list(LOYAL_STAGES)))
        flags = loyal.select(lc=loyal.customer_id, lm=loyal.month)
        marked = in_span.left_join(
            flags, [in_span.customer_id == flags.lc, in_span.pmonth == flags.lm]
        )
        revenue = marked.group_by(month=marked.pmonth).aggregate(
            month_revenue=marked.spend.sum(),
            loyal_revenue=marked.lc.notnull().ifelse(marked.spend, 0).sum(),
        )
        counts = loyal.group_by("month").aggregate(loyal_customers=loyal.count())
        revenue = revenue.mutate(
            loyal_revenue_share=(revenue.month_revenue > 0).ifelse(
                revenue.loyal_revenue.cast("float64") / revenue.month_revenue.cast("float64"),
                ibis.null("float64"),
            )
        ).drop("loyal_revenue")
    else:
        revenue = in_span.group_by(month=in_span.pmonth).aggregate(
            month_revenue=in_span.spend.sum()
        )
        revenue = revenue.mutate(loyal_revenue_share=ibis.null("float64"))
        counts = None
    out = base.left_join(revenue, "month").drop("month_right")
    if counts is not None:
        out = out.left_join(counts, "month").drop("month_right")
        out = out.mutate(loyal_customers=out.loyal_customers.fill_null(0))
    else:
        out = out.mutate(loyal_customers=ibis.null("int64"))
    return out.select(
        "month",
        "buyers",
        "historical_ltv",
        out.month_revenue.fill_null(0).name("month_revenue"),
        "loyal_revenue_share",
        "loyal_customers",
        "mean_p_alive",
        "model_active_customers",
    ).order_by("month")
