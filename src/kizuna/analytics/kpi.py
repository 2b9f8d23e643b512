"""Loyalty KPIs over a period and as monthly trends.

* **NPS** = 100 × (share of promoters 9-10 − share of detractors 0-6). Scoring
  each answer +1/0/−1, NPS/100 is the mean of those scores, whose variance
  is p_P + p_D − (p_P − p_D)²; the 95% margin of error is
  1.96 · 100 · sqrt(variance / n). A monthly NPS from 150 answers moves by
  ±10 points by chance alone, which is why the margin is always shown.
* **CSAT** = share of answers 4 or 5 on the 5-point scale; **CES** = mean
  effort score (lower is easier).
* **Repeat rate** = among customers who bought in the period, the share who
  had bought on at least two days by its end.
* **Retention / churn** (non-contractual): a customer is *active* on a day if
  they bought in the ``window_days`` before it. Retention over a period is the
  share of customers active at its start who are still active at its end;
  churn is one minus it. The model-based counterpart, the mean BG/NBD
  P(alive), comes with the scoring run.
* **Historical LTV** = mean net spend per buying customer to date.

Periods are half-open ranges of local days ``[start_day, end_day)``; months
are local month numbers (``year·12 + month − 1``) as in
:mod:`kizuna.analytics.extract`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from kizuna.analytics.summary import purchase_days, require

if TYPE_CHECKING:
    import ibis.expr.types as ir

Z95 = 1.959963984540054
EPOCH = date(1970, 1, 1).toordinal()


def month_label(month: int) -> str:
    """``YYYY-MM`` of a month number ``year·12 + month − 1``."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def month_start_day(month: int) -> int:
    """Local day number (days since 1970-01-01) of the first day of ``month``."""
    return date(month // 12, month % 12 + 1, 1).toordinal() - EPOCH


def day_of(value: date) -> int:
    return value.toordinal() - EPOCH


def date_of(day: int) -> date:
    return date.fromordinal(day + EPOCH)


def _period(table: ir.Table, day: str, start_day: int | None, end_day: int | None) -> ir.Table:
    if start_day is not None:
        table = table.filter(table[day] >= start_day)
    if end_day is not None:
        table = table.filter(table[day] < end_day)
    return table


def _aggregate(table: ir.Table, keys: dict[str, Any], **metrics: Any) -> ir.Table:
    """``group_by(keys).aggregate`` that also works with no keys (one row)."""
    if keys:
        return table.group_by(**keys).aggregate(**metrics)
    return table.aggregate(**metrics)


def nps(
    answers: ir.Table,
    *,
    start_day: int | None = None,
    end_day: int | None = None,
    by_month: bool = False,
    kind: str = "kind",
    score: str = "score",
    day: str = "answered_at_day",
    month: str = "answered_at_month",
) -> ir.Table:
    """NPS with its 95% margin of error and the three shares (one row, or one per month)."""
    require(answers, kind, score, day, *([month] if by_month else []), what="survey answers")
    a = _period(answers.filter(answers[kind] == "nps"), day, start_day, end_day)
    keys = {"month": a[month]} if by_month else {}
    agg = _aggregate(
        a,
        keys,
        responses=a.count(),
        promoters=(a[score] >= 9).cast("int64").sum(),
        detractors=(a[score] <= 6).cast("int64").sum(),
    )
    n = agg.responses.cast("float64")
    p_pro = agg.promoters.cast("float64") / n
    p_det = agg.detractors.cast("float64") / n
    variance = p_pro + p_det - (p_pro - p_det) ** 2
    out = agg.mutate(
        passives=agg.responses - agg.promoters - agg.detractors,
        promoter_share=p_pro,
        passive_share=1.0 - p_pro - p_det,
        detractor_share=p_det,
        nps=100.0 * (p_pro - p_det),
        margin_of_error=100.0 * Z95 * (variance / n).sqrt(),
    )
    return out.order_by("month") if by_month else out


def csat_ces(
    answers: ir.Table,
    *,
    start_day: int | None = None,
    end_day: int | None = None,
    by_month: bool = False,
    kind: str = "kind",
    score: str = "score",
    day: str = "answered_at_day",
    month: str = "answered_at_month",
) -> ir.Table:
    """CSAT (share of 4-5) and CES (mean), with their answer counts."""
    require(answers, kind, score, day, *([month] if by_month else []), what="survey answers")
    a = _period(answers, day, start_day, end_day)
    is_csat = a[kind] == "csat"
    is_ces = a[kind] == "ces"
    keys = {"month": a[month]} if by_month else {}
    agg = _aggregate(
        a,
        keys,
        csat_responses=is_csat.cast("int64").sum(),
        csat_satisfied=(is_csat & (a[score] >= 4)).cast("int64").sum(),
        ces_responses=is_ces.cast("int64").sum(),
        ces_total=is_ces.ifelse(a[score], 0).sum(),
    )
    out = agg.select(
        *keys,
        "csat_responses",
        csat=(agg.csat_responses > 0).ifelse(
            agg.csat_satisfied.cast("float64") / agg.csat_responses.cast("float64"), None
        ),
        ces_responses=agg.ces_responses,
        ces=(agg.ces_responses > 0).ifelse(
            agg.ces_total.cast("float64") / agg.ces_responses.cast("float64"), None
        ),
    )
    return out.order_by("month") if by_month else out


def repeat_rate(
    orders: ir.Table,
    *,
    start_day: int | None = None,
    end_day: int | None = None,
    by_month: bool = False,
    customer: str = "customer_id",
    day: str = "ordered_at_day",
    month: str = "ordered_at_month",
    amount: str = "amount",
) -> ir.Table:
    """Buyers in the period (or each month) and the share of them who are repeat buyers."""
    require(orders, customer, day, month, amount, what="orders")
    o = orders.select(customer_id=orders[customer], day=orders[day], month=orders[month])
    days = o.distinct()
    # Purchase days so far: a running count per customer, so one pass serves every month.
    import ibis

    days = days.mutate(nth=ibis.row_number().over(group_by=days.customer_id, order_by=days.day) + 1)
    days = _period(days, "day", start_day, end_day)
    keys = {"month": days.month} if by_month else {}
    per = days.group_by(customer_id=days.customer_id, **keys).aggregate(most=days.nth.max())
    agg = _aggregate(
        per,
        {k: per[k] for k in keys},
        buyers=per.count(),
        repeat_buyers=(per.most >= 2).cast("int64").sum(),
    )
    out = agg.mutate(repeat_rate=agg.repeat_buyers.cast("float64") / agg.buyers.cast("float64"))
    return out.order_by("month") if by_month else out


def retention(
    orders: ir.Table,
    *,
    months: list[int],
    window_days: int = 90,
    customer: str = "customer_id",
    day: str = "ordered_at_day",
    amount: str = "amount",
) -> ir.Table:
    """Monthly retention and churn: active at the month's start and still at its end.

    Returns ``month, active_start, retained, retention_rate, churn_rate`` for
    each month in ``months``.
    """
    import ibis
    import pyarrow as pa

    days = purchase_days(orders, customer=customer, day=day, amount=amount)
    edges = sorted({m for m in months} | {m + 1 for m in months})
    bounds = ibis.memtable(
        pa.table(
            {
                "edge": pa.array(edges, pa.int64()),
                "edge_day": pa.array([month_start_day(m) for m in edges], pa.int64()),
            }
        )
    )
    # Active at an edge = bought in [edge_day - window, edge_day).
    active = (
        days.join(
            bounds,
            [days.day < bounds.edge_day, days.day >= bounds.edge_day - window_days],
        )
        .select("customer_id", "edge")
        .distinct()
    )
    nxt = active.select(customer_id="customer_id", edge=active.edge - 1, kept=ibis.literal(1))
    both = active.left_join(nxt, ["customer_id", "edge"])
    agg = both.group_by(month=both.edge).aggregate(
        active_start=both.count(), retained=both.kept.fill_null(0).sum()
    )
    agg = agg.filter(agg.month.isin(months))
    rate = agg.retained.cast("float64") / agg.active_start.cast("float64")
    return agg.mutate(retention_rate=rate, churn_rate=1.0 - rate).order_by("month")


def historical_ltv(summary: ir.Table, *, total: str = "total_amount") -> ir.Table:
    """Buying customers, their total net spend and its mean (minor units)."""
    require(summary, total, what="summary")
    return summary.aggregate(
        customers=summary.count(),
        revenue=summary[total].sum(),
        historical_ltv=summary[total].mean(),
    )
