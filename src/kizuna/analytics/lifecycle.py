"""Lifecycle stages at each month end, and how customers move between them.

Every buying customer is in exactly one stage at the end of a month, by the
first rule that holds, in this order:

1. **lapsed**: no purchase for ``lapsed_days``;
2. **at_risk**: no purchase for ``at_risk_days``;
3. **ambassador**: loyal (below) and referred someone or took part in the
   community within ``ambassador_window_days``;
4. **loyal**: at least ``loyal_min_purchases`` purchase days and an attitude
   score (recency-weighted, as in :mod:`kizuna.analytics.loyalty`) at or
   above ``attitude_threshold``: loyalty needs attachment, not only habit;
5. **repeat**: two or more purchase days;
6. **new**: otherwise (one purchase, recent).

Snapshots are built per month from monthly aggregates, so the cost grows
with customers × months of history, never with single orders × months.
The transition matrix then answers "where did last month's loyal customers
go?", and the stage counts give the loyal-customer trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from kizuna.analytics.kpi import month_start_day
from kizuna.analytics.summary import require

if TYPE_CHECKING:
    import ibis.expr.types as ir

STAGES = ("new", "repeat", "loyal", "ambassador", "at_risk", "lapsed")
LABELS: dict[str, dict[str, str]] = {
    "new": {"en": "New", "ja": "新規"},
    "repeat": {"en": "Repeat", "ja": "リピーター"},
    "loyal": {"en": "Loyal", "ja": "ロイヤル"},
    "ambassador": {"en": "Ambassador", "ja": "アンバサダー"},
    "at_risk": {"en": "At risk", "ja": "離反リスク"},
    "lapsed": {"en": "Lapsed", "ja": "離反"},
}


@dataclass(frozen=True)
class LifecycleRules:
    """The thresholds of the stage rules (see the module docstring)."""

    new_days: int = 90
    loyal_min_purchases: int = 5
    at_risk_days: int = 90
    lapsed_days: int = 180
    ambassador_window_days: int = 365
    attitude_threshold: float = 0.6
    half_life_days: float = 365.0


def _edges(months: list[int], end_day: int | None) -> ir.Table:
    import ibis

    edges = [month_start_day(m + 1) for m in months]
    if end_day is not None and edges:
        edges[-1] = min(edges[-1], end_day)
    return ibis.memtable(
        pa.table({"month": pa.array(months, pa.int64()), "edge": pa.array(edges, pa.int64())})
    )


def snapshots(
    orders: ir.Table,
    months: list[int],
    rules: LifecycleRules | None = None,
    *,
    signals: ir.Table | None = None,
    advocacy: ir.Table | None = None,
    end_day: int | None = None,
) -> ir.Table:
    """``customer_id, month, stage`` at the end of each month in ``months``.

    ``end_day`` (exclusive) cuts the last snapshot short: the stage "as of
    today" in a month that has not ended.

    ``signals`` are attitudinal signals (``customer_id, day, value, weight``,
    from :func:`kizuna.analytics.loyalty.attitude_signals`); ``advocacy`` has
    ``customer_id, day`` of referrals and community participation. Without
    signals nobody is loyal: attitude is never assumed.
    """
    import ibis

    rules = rules or LifecycleRules()
    require(orders, "customer_id", "ordered_at_day", "ordered_at_month", what="orders")
    per_month = orders.group_by(
        customer_id=orders.customer_id, pmonth=orders.ordered_at_month
    ).aggregate(
        n=orders.ordered_at_day.nunique(),
        first=orders.ordered_at_day.min(),
        last=orders.ordered_at_day.max(),
    )
    edges = _edges(sorted(months), end_day)
    joined = per_month.join(edges, per_month.pmonth < edges.month + 1)
    snap = joined.group_by(["customer_id", "month", "edge"]).aggregate(
        purchases=joined.n.sum(), first=joined.first.min(), last=joined.last.max()
    )
    if signals is not None:
        require(signals, "customer_id", "day", "value", "weight", what="signals")
        decay = math.log(2.0) / rules.half_life_days
        sj = signals.join(edges, signals.day < edges.edge)
        w = sj.weight * ((sj.day - sj.edge).cast("float64") * decay).exp()
        sj = sj.mutate(w=w, wv=w * sj.value)
        att = sj.group_by(["customer_id", "month"]).aggregate(attitude=sj.wv.sum() / sj.w.sum())
        snap = snap.left_join(att, ["customer_id", "month"]).drop(
            "customer_id_right", "month_right"
        )
    else:
        snap = snap.mutate(attitude=ibis.null("float64"))
    if advocacy is not None:
        require(advocacy, "customer_id", "day", what="advocacy")
        aj = advocacy.join(
            edges,
            [advocacy.day < edges.edge, advocacy.day >= edges.edge - rules.ambassador_window_days],
        )
        adv = aj.group_by(["customer_id", "month"]).aggregate(acts=aj.count())
        snap = snap.left_join(adv, ["customer_id", "month"]).drop(
            "customer_id_right", "month_right"
        )
    else:
        snap = snap.mutate(acts=ibis.literal(0))
    idle = snap.edge - 1 - snap.last
    loyal = (snap.purchases >= rules.loyal_min_purchases) & (
        snap.attitude.fill_null(-1.0) >= rules.attitude_threshold
    )
    stage = ibis.cases(
        (idle >= rules.lapsed_days, "lapsed"),
        (idle >= rules.at_risk_days, "at_risk"),
        (loyal & (snap.acts.fill_null(0) > 0), "ambassador"),
        (loyal, "loyal"),
        (snap.purchases >= 2, "repeat"),
        else_="new",
    )
    return snap.select("customer_id", "month", stage=stage)


def transitions(snaps: ir.Table) -> ir.Table:
    """``month, from_stage, to_stage, customers``: moves from the previous month end.

    Customers who made their first purchase during the month come from ``None``.
    """
    prev = snaps.select(
        customer_id=snaps.customer_id, month=snaps.month + 1, from_stage=snaps.stage
    )
    moved = snaps.left_join(prev, ["customer_id", "month"])
    return (
        moved.group_by(month=moved.month, from_stage=moved.from_stage, to_stage=moved.stage)
        .aggregate(customers=moved.count())
        .order_by(["month", "from_stage", "to_stage"])
    )


def stage_counts(snaps: ir.Table) -> ir.Table:
    """``month, stage, customers``: the trend of every stage, loyal included."""
    return (
        snaps.group_by(["month", "stage"])
        .aggregate(customers=snaps.count())
        .order_by(["month", "stage"])
    )
