"""Who could become loyal: a gradient-boosting propensity model with an honest AUC.

The label is "loyal or ambassador" in :mod:`kizuna.analytics.lifecycle`
(habit *and* attachment) at the end of a window of ``horizon_days``; the
features describe the customer at its start (purchases, recency, tenure,
spend, attitude and how many attitudinal signals, advocacy acts). Only
customers not yet loyal at the start are used: the question is who will
*become* loyal.

Three points in time, ``horizon_days`` apart, make the split by time, not
by customer, because the model will be used on the future:

* train on features at t0 = as_of − 2h, labels at t1 = as_of − h;
* test on features at t1, labels at as_of: the AUC reported every run;
* score today's customers with features at as_of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kizuna.analytics import lifecycle, summary
from kizuna.analytics.loyalty import attitude_scores

if TYPE_CHECKING:
    import ibis.expr.types as ir

FEATURES = ("frequency", "recency_days", "tenure_days", "monetary", "total_amount",
            "attitude", "signals", "acts")  # fmt: skip
LOYAL = ("loyal", "ambassador")


@dataclass(frozen=True)
class PropensityResult:
    """Today's scores (``customer_id, propensity``), the held-out AUC and sample sizes."""

    scores: pd.DataFrame
    auc: float
    train_rows: int
    test_rows: int
    positive_rate: float


def features(
    orders: ir.Table,
    signals: ir.Table | None,
    advocacy: ir.Table | None,
    end_day: int,
    rules: lifecycle.LifecycleRules,
) -> pd.DataFrame:
    """Per-customer features as of ``end_day`` (exclusive), plus the stage then."""
    import ibis

    s = summary.transaction_summary(orders, end_day=end_day)
    base = s.select(
        "customer_id",
        "frequency",
        recency_days=(end_day - s.last_day).cast("float64"),
        tenure_days=s["T"],
        monetary=s.monetary,
        total_amount=s.total_amount.cast("float64"),
    )
    if signals is not None:
        att = attitude_scores(signals, end_day=end_day, half_life_days=rules.half_life_days)
        base = base.left_join(att, "customer_id").drop("customer_id_right")
    else:
        base = base.mutate(attitude=ibis.null("float64"), signals=ibis.literal(0))
    if advocacy is not None:
        adv = advocacy.filter(advocacy.day < end_day)
        adv = adv.group_by("customer_id").aggregate(acts=adv.count())
        base = base.left_join(adv, "customer_id").drop("customer_id_right")
    else:
        base = base.mutate(acts=ibis.literal(0))
    month = _month_of_day(end_day - 1)
    stage = lifecycle.snapshots(
        orders, [month], rules, signals=signals, advocacy=advocacy, end_day=end_day
    ).select("customer_id", "stage")
    frame = base.left_join(stage, "customer_id").drop("customer_id_right").to_pandas()
    frame["signals"] = frame["signals"].fillna(0)
    frame["acts"] = frame["acts"].fillna(0)
    return frame.sort_values("customer_id").reset_index(drop=True)


def _month_of_day(day: int) -> int:
    from kizuna.analytics.kpi import date_of

    d = date_of(day)
    return d.year * 12 + d.month - 1


def _xy(start: pd.DataFrame, end: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    candidates = start[~start["stage"].isin(LOYAL)]
    later = end.set_index("customer_id")["stage"]
    label = candidates["customer_id"].map(later).isin(LOYAL).to_numpy()
    return candidates, label.astype(int)


def fit_and_score(
    orders: ir.Table,
    signals: ir.Table | None,
    advocacy: ir.Table | None,
    *,
    end_day: int,
    horizon_days: int = 180,
    rules: lifecycle.LifecycleRules | None = None,
    seed: int = 0,
    max_train_rows: int = 100_000,
) -> PropensityResult:
    """Train on the past window, report the AUC on the next, score customers today."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    rules = rules or lifecycle.LifecycleRules()
    t0, t1 = end_day - 2 * horizon_days, end_day - horizon_days
    at0, at1, now = (features(orders, signals, advocacy, d, rules) for d in (t0, t1, end_day))
    train_x, train_y = _xy(at0, at1)
    test_x, test_y = _xy(at1, now)
    from threadpoolctl import threadpool_limits

    model: Any = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, random_state=seed)
    cols = list(FEATURES)
    auc = float("nan")
    rng = np.random.default_rng(seed)

    def fit(x: pd.DataFrame, y: np.ndarray) -> None:
        # A few hundred thousand rows pin the trees down; more only cost time.
        keep = rng.permutation(len(y))[:max_train_rows] if len(y) > max_train_rows else slice(None)
        model.fit(x[cols].to_numpy(dtype=float)[keep], y[keep])

    # One thread: OpenMP's spinning threads slow boosting down tenfold when
    # the machine is shared (DuckDB, another process), for little gain alone.
    if len(train_y) and train_y.min() != train_y.max():
        with threadpool_limits(1):
            fit(train_x, train_y)
            if test_y.min() != test_y.max():
                predicted = model.predict_proba(test_x[cols].to_numpy(dtype=float))[:, 1]
                auc = float(roc_auc_score(test_y, predicted))
            # Refit on the latest complete window before scoring today's customers.
            fit(test_x, test_y)
            propensity = model.predict_proba(now[cols].to_numpy(dtype=float))[:, 1]
    else:
        propensity = np.full(len(now), float(train_y.mean()) if len(train_y) else 0.0)
    propensity = np.where(now["stage"].isin(LOYAL).to_numpy(), np.nan, propensity)
    return PropensityResult(
        scores=pd.DataFrame({"customer_id": now["customer_id"], "propensity": propensity}),
        auc=auc,
        train_rows=len(train_y),
        test_rows=len(test_y),
        positive_rate=float(test_y.mean()) if len(test_y) else float("nan"),
    )
