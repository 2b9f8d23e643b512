"""One scoring run: every per-customer score and the KPIs, computed together.

The steps, each timed and reported through ``progress``:

1. extract the needed columns into the analytics engine (DuckDB by default);
2. the transaction summary (x, t_x, T, spend) as of the run's day;
3. BG/NBD and Gamma-Gamma fitted on the distinct histories (weeks);
4. per customer: P(alive), expected purchases in the next year, CLV over the
   horizon, discounted;
5. RFM scores and segments;
6. attitude from the voice-of-customer tables;
7. behaviour percentiles and the loyalty matrix;
8. KPIs of the last twelve months and of the run's month;
9. the purchase model checked on a holdout: refitted without the last
   ``holdout_days`` and its predicted purchases in them compared with the
   actual ones by calibration frequency (stored as ``models.bgnbd_holdout``).

The result is an Arrow table of per-customer scores plus a JSON-ready
dictionary of model parameters and KPIs; :mod:`kizuna.services.scoring`
stores both as a versioned run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from kizuna.analytics import kpi, lifecycle, loyalty, propensity, rfm, summary
from kizuna.analytics.clv import bgnbd, diagnostics, gamma_gamma, value
from kizuna.analytics.clv.mle import Fit
from kizuna.errors import ValidationError

if TYPE_CHECKING:
    from kizuna.analytics.engine import Dataset

WEEK_DAYS = 7.0
WEEKS_PER_YEAR = 365.25 / 7.0
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class ScoringOptions:
    """The knobs of a run; defaults come from the workspace settings."""

    as_of: date
    definition: loyalty.LoyaltyDefinition = field(default_factory=loyalty.LoyaltyDefinition)
    rfm_bins: int = 5
    churn_window_days: int = 90
    clv_horizon_months: int = 12
    annual_discount: float = 0.10
    lifecycle_rules: lifecycle.LifecycleRules = field(default_factory=lifecycle.LifecycleRules)
    #: Days at the end held out to check the purchase model (stored as ``bgnbd_holdout``).
    holdout_days: int = 182


@dataclass
class ScoringResult:
    """Per-customer scores (Arrow) and the run's models, KPIs and step timings."""

    as_of: date
    scores: pa.Table
    models: dict[str, Any]
    kpis: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _history_rows(table: pa.Table) -> tuple[list[np.ndarray], np.ndarray]:
    cols = [table[c].to_numpy().astype(float) for c in ("frequency", "recency", "T")]
    return cols, table["n"].to_numpy().astype(float)


def run(data: Dataset, options: ScoringOptions, progress: Progress | None = None) -> ScoringResult:
    """Compute a scoring run on ``data`` (see the module docstring for the steps)."""
    timings: dict[str, float] = {}

    @contextmanager
    def step(name: str, what: str) -> Iterator[None]:
        if progress:
            progress(name, what)
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start

    end_day = kpi.day_of(options.as_of) + 1
    orders = data["orders"]
    with step("summary", "transaction summary"):
        # Computed once and kept as a table: Ibis expressions are lazy, and
        # every later step would otherwise recompute it from the orders.
        per = summary.transaction_summary(orders, end_day=end_day).to_pyarrow()
        summ = data.register("summary", per)
        if per.num_rows == 0:
            raise ValidationError(
                f"no completed orders before {options.as_of}; import orders before scoring"
            )
        weeks = summ.mutate(recency=summ.recency / WEEK_DAYS, T=summ.T / WEEK_DAYS)
        hist = weeks.group_by(["frequency", "recency", "T"]).aggregate(n=weeks.count()).to_pyarrow()
        # Gamma-Gamma needs a positive mean spend; fully refunded histories sit out.
        repeaters = summ.filter((summ.frequency > 0) & (summ.monetary > 0))
        spend_rows = (
            repeaters.group_by(["frequency", "monetary"])
            .aggregate(n=repeaters.count())
            .to_pyarrow()
        )
    with step("clv_fit", "fitting BG/NBD and Gamma-Gamma"):
        (freq, rec, tenure), weights = _history_rows(hist)
        purchase_fit = bgnbd.fit(freq, rec, tenure, weights=weights)
        spend_fit: Fit | None = None
        if spend_rows.num_rows >= 3:
            spend_fit = gamma_gamma.fit(
                spend_rows["frequency"].to_numpy().astype(float),
                spend_rows["monetary"].to_numpy(),
                weights=spend_rows["n"].to_numpy().astype(float),
            )
    with step("clv_predict", "P(alive), expected purchases and CLV per customer"):
        x = per["frequency"].to_numpy().astype(float)
        t_x = per["recency"].to_numpy() / WEEK_DAYS
        T = per["T"].to_numpy() / WEEK_DAYS
        params = purchase_fit.vector()
        p_alive = bgnbd.probability_alive(params, x, t_x, T)
        # E[Y(t) | x, t_x, T] = (a factor of x and T alone) × P(alive): the
        # hypergeometric part is computed once per distinct (x, T) pair.
        pairs, where = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
        where = where.ravel()

        def purchases(t: float) -> np.ndarray:
            unit = bgnbd.expected_purchases_if_alive(params, t, pairs[:, 0], pairs[:, 1])
            return np.asarray(unit[where] * p_alive)

        expected = purchases(WEEKS_PER_YEAR)
        if spend_fit is not None and spend_fit.params["q"] > 1:
            spend = gamma_gamma.conditional_expected_spend(
                spend_fit.vector(), x, per["monetary"].to_numpy()
            )
        else:
            spend = np.full(x.size, float(np.mean(per["total_amount"].to_numpy())))
        clv = value.discounted_value(
            purchases,
            spend,
            horizon=options.clv_horizon_months * WEEKS_PER_YEAR / 12,
            steps=options.clv_horizon_months,
            annual_discount=options.annual_discount,
            unit_per_year=WEEKS_PER_YEAR,
        )
        model_cols = pa.table(
            {
                "customer_id": per["customer_id"],
                "p_alive": pa.array(p_alive),
                "expected_purchases_1y": pa.array(expected),
                "expected_spend": pa.array(spend),
                "clv": pa.array(np.rint(np.nan_to_num(clv)).astype(np.int64)),
            }
        )
        models_t = data.register("model_scores", model_cols)
    with step("rfm", "RFM scores and segments"):
        scores = rfm.rfm_scores(summ, end_day=end_day, bins=options.rfm_bins)
    with step("attitude", "attitude from surveys, reviews, referrals, community"):
        d = options.definition
        signals = loyalty.attitude_signals(
            answers=data.tables.get("survey_answers"),
            reviews=data.tables.get("reviews"),
            referrals=data.tables.get("referrals"),
            community=data.tables.get("community_activity"),
            contacts=data.tables.get("contacts"),
            tone=data.tables.get("feedback_tone"),
            weights=d.attitude_weights,
        )
        att = data.register(
            "attitude",
            loyalty.attitude_scores(
                signals, end_day=end_day, half_life_days=d.half_life_days
            ).to_pyarrow(),
        )
    with step("lifecycle", "lifecycle stages"):
        month = options.as_of.year * 12 + options.as_of.month - 1
        advocacy = _advocacy(data)
        stages = lifecycle.snapshots(
            orders,
            [month],
            options.lifecycle_rules,
            signals=signals,
            advocacy=advocacy,
            end_day=end_day,
        ).select("customer_id", lifecycle="stage")
        stages = data.register("stages", stages.to_pyarrow())
    with step("matrix", "behaviour scores and the loyalty matrix"):
        base = summ.select(
            "customer_id", "frequency", "recency", "T", "monetary", "purchases", "total_amount",
            "first_day", "last_day",
        )  # fmt: skip
        joined = (
            base.join(models_t, "customer_id")
            .join(scores.drop("frequency", "monetary"), "customer_id")
            .left_join(att, "customer_id")
            .drop("customer_id_right")
            .left_join(stages, "customer_id")
            .drop("customer_id_right")
        )
        behaved = loyalty.behaviour_scores(joined, weights=d.behaviour_weights)
        matrix = loyalty.loyalty_matrix(
            behaved,
            behaviour_threshold=d.behaviour_threshold,
            attitude_threshold=d.attitude_threshold,
        )
        result = matrix.order_by("customer_id").to_pyarrow()
    with step(
        "propensity", "propensity to become loyal (gradient boosting, AUC on a later window)"
    ):
        prop = propensity.fit_and_score(
            orders, signals, advocacy, end_day=end_day, rules=options.lifecycle_rules
        )
        ids = prop.scores["customer_id"].to_numpy()
        if not np.array_equal(ids, result["customer_id"].to_numpy()):
            raise AssertionError("propensity and scores disagree on the customers")
        result = result.append_column(
            "loyal_propensity", pa.array(prop.scores["propensity"].to_numpy(), from_pandas=True)
        )
    with step("kpis", "KPIs"):
        kpis = _kpis(data, result, options, end_day)
    with step("clv_diagnostics", "BG/NBD checked on a holdout: predicted vs actual purchases"):
        holdout = _holdout(orders, end_day, options.holdout_days)
    models: dict[str, Any] = {"bgnbd": purchase_fit.to_dict(), "time_unit": "weeks"}
    models["propensity"] = {
        "model": "HistGradientBoostingClassifier",
        "features": list(propensity.FEATURES),
        "auc_next_window": prop.auc if np.isfinite(prop.auc) else None,
        "train_rows": prop.train_rows,
        "test_rows": prop.test_rows,
        "positive_rate": prop.positive_rate if np.isfinite(prop.positive_rate) else None,
    }
    if spend_fit is not None:
        models["gamma_gamma"] = spend_fit.to_dict()
    models["bgnbd_holdout"] = holdout
    return ScoringResult(options.as_of, result, models, kpis, timings)


def _holdout(orders: Any, end_day: int, holdout_days: int) -> dict[str, Any]:
    """BG/NBD refitted without the last ``holdout_days`` and checked on them (FHL 2005, Fig. 4).

    Stored with the run so that anyone reading its P(alive) and CLV can see
    how well the same model predicted the recent past; too little history is
    recorded as such rather than failing the run.
    """
    try:
        check = diagnostics.holdout_check(
            orders,
            calibration_end_day=end_day - holdout_days,
            observation_end_day=end_day,
            unit_days=WEEK_DAYS,
        )
    except ValidationError as exc:
        return {"model": "bgnbd", "error": str(exc)}
    return check.to_dict()


def _advocacy(data: Dataset) -> Any:
    """Referrals and community participation as ``customer_id, day`` rows (or None)."""
    import ibis

    parts = []
    if "referrals" in data.tables:
        r = data["referrals"]
        parts.append(r.select(customer_id=r.customer_id, day=r.referred_at_day))
    if "community_activity" in data.tables:
        c = data["community_activity"]
        parts.append(c.select(customer_id=c.customer_id, day=c.occurred_at_day))
    return ibis.union(*parts) if parts else None


def _kpis(data: Dataset, scores: pa.Table, options: ScoringOptions, end_day: int) -> dict[str, Any]:
    """The headline KPIs of the last twelve months, plus model-based and loyalty figures."""
    start_day = kpi.day_of(date(options.as_of.year - 1, options.as_of.month, 1))
    out: dict[str, Any] = {
        "period": {"start": str(kpi.date_of(start_day)), "end": str(options.as_of)}
    }
    answers = data.tables.get("survey_answers")
    if answers is not None:
        out["nps"] = _row(kpi.nps(answers, start_day=start_day, end_day=end_day))
        out["csat_ces"] = _row(kpi.csat_ces(answers, start_day=start_day, end_day=end_day))
    out["repeat"] = _row(kpi.repeat_rate(data["orders"], start_day=start_day, end_day=end_day))
    totals = scores["total_amount"].to_numpy()
    out["historical_ltv"] = float(totals.mean()) if totals.size else None
    out["mean_p_alive"] = float(np.mean(scores["p_alive"].to_numpy())) if totals.size else None
    classes = scores["loyalty"].to_numpy(zero_copy_only=False)
    loyal = classes == "true"
    revenue = float(totals.sum())
    out["loyalty_counts"] = {c: int((classes == c).sum()) for c in loyalty.CLASSES}
    stages = scores["lifecycle"].to_numpy(zero_copy_only=False)
    out["lifecycle_counts"] = {s: int((stages == s).sum()) for s in lifecycle.STAGES}
    out["loyal_revenue_share"] = float(totals[loyal].sum() / revenue) if revenue else None
    return out


def _row(expr: Any) -> dict[str, Any]:
    table = expr.to_pyarrow()
    if table.num_rows == 0:
        return {}
    return {
        k: (v if not isinstance(v, float) or np.isfinite(v) else None)
        for k, v in table.to_pylist()[0].items()
    }
