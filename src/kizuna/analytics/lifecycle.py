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
5. **repeat**: at least ``repeat_min_purchases`` (2) purchase days;
6. **new**: otherwise (one purchase, recent).

The thresholds are workspace configuration: the ``lifecycle_rules`` setting
(``NAME=VALUE, ...``, read by :func:`parse_rules`), with the attitude
threshold and half-life shared with the loyalty definition, so that "loyal"
means the same here and in the loyalty matrix.

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
from kizuna.errors import ConfigError

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

    loyal_min_purchases: int = 5
    at_risk_days: int = 90
    lapsed_days: int = 180
    ambassador_window_days: int = 365
    attitude_threshold: float = 0.6
    half_life_days: float = 365.0
    repeat_min_purchases: int = 2

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in (*RULE_NAMES, "attitude_threshold")}


#: The rules a workspace may set in ``lifecycle_rules`` (all whole numbers of days or purchases).
RULE_NAMES = (
    "at_risk_days",
    "lapsed_days",
    "ambassador_window_days",
    "loyal_min_purchases",
    "repeat_min_purchases",
)
DEFAULT_RULES_TEXT = (
    "at_risk_days=90,lapsed_days=180,ambassador_window_days=365,"
    "loyal_min_purchases=5,repeat_min_purchases=2"
)


def parse_rules(
    text: str, *, attitude_threshold: float = 0.6, half_life_days: float = 365.0
) -> LifecycleRules:
    """``"at_risk_days=60, lapsed_days=120"`` into rules; names left out keep their defaults.

    Refuses unknown names, values that are not positive whole numbers and
    rules that contradict each other (a customer must turn "at risk" before
    "lapsed", and "loyal" must need at least as many purchases as "repeat"),
    because a silently ignored rule would mislabel every customer.
    """
    what = "lifecycle_rules"
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in RULE_NAMES:
            raise ConfigError(
                f"{what}: {part!r} is not NAME=VALUE with NAME one of {', '.join(RULE_NAMES)}"
            )
        try:
            number = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{what}: {name}={raw.strip()!r} is not a whole number") from None
        if number <= 0:
            raise ConfigError(f"{what}: {name} must be positive, got {number}")
        values[name] = number
    rules = LifecycleRules(
        attitude_threshold=attitude_threshold, half_life_days=half_life_days, **values
    )
    if rules.lapsed_days <= rules.at_risk_days:
        raise ConfigError(
            f"{what}: lapsed_days ({rules.lapsed_days}) must be longer than at_risk_days "
            f"({rules.at_risk_days})"
        )
    if rules.loyal_min_purchases < rules.repeat_min_purchases:
        raise ConfigError(
            f"{what}: loyal_min_purchases ({rules.loyal_min_purchases}) must be at least "
            f"repeat_min_purchases ({rules.repeat_min_purchases})"
        )
    return rules


def _edges(months: list[int], end_day: int | None) -> ir.Table:
    import ibis

    edges = [month_start_day(m + 1) for m in months]
    if end_day is not None and edges:
        edges[-1] = min(edges[-1], end_day)
    return ibis.memtable(
        pa.table({"month": pa.array(months, pa.int64()), "edge": pa.array(edges, pa.int64())})
    )


def monthly_activity(orders: ir.Table) -> ir.Table:
    """``customer_id, pmonth, n, first, last[, spend]``: one row per customer and month bought in.

    ``spend`` (the month's net spend) is there when ``orders`` has ``amount``.
    """
    require(orders, "customer_id", "ordered_at_day", "ordered_at_month", what="orders")
    metrics = {
        "n": orders.ordered_at_day.nunique(),
        "first": orders.ordered_at_day.min(),
        "last": orders.ordered_at_day.max(),
    }
    if "amount" in orders.columns:
        metrics["spend"] = orders.amount.sum()
    return orders.group_by(
        customer_id=orders.customer_id, pmonth=orders.ordered_at_month
    ).aggregate(**metrics)


def _histories(orders: ir.Table, edges: ir.Table) -> ir.Table:
    per_month = monthly_activity(orders)
    joined = per_month.join(edges, per_month.pmonth < edges.month + 1)
    metrics = {
        "purchases": joined.n.sum(),
        "first": joined["first"].min(),
        "last": joined["last"].max(),
    }
    if "spend" in per_month.columns:
        metrics["spend"] = joined.spend.sum()
    return joined.group_by(["customer_id", "month", "edge"]).aggregate(**metrics)


def month_end_histories(
    orders: ir.Table, months: list[int], end_day: int | None = None
) -> ir.Table:
    """``customer_id, month, edge, purchases, first, last[, spend]`` at each month end.

    Everyone who bought before the month's end ``edge`` (exclusive day):
    purchase days, first and last purchase day and cumulative net spend so
    far. The lifecycle stages and the monthly trend KPIs are both built on it.
    """
    return _histories(orders, _edges(sorted(months), end_day))


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
    edges = _edges(sorted(months), end_day)
    require(orders, "customer_id", "ordered_at_day", "ordered_at_month", what="orders")
    # Spend is not needed for stages: leave it out of the aggregation.
    snap = _histories(orders.select("customer_id", "ordered_at_day", "ordered_at_month"), edges)
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
        (snap.purchases >= rules.repeat_min_purchases, "repeat"),
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
