"""Read-side analytics for the CLI and the Python API: KPIs, cohorts, segments.

KPIs and cohorts are computed from the data on the analytics engine each
time (they are cheap and must reflect the latest import); segments and the
loyalty matrix come from the latest stored scoring run.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.analytics import cohorts, engine, kpi
from kizuna.errors import NotFound
from kizuna.services.scoring import (
    analytics_connection,
    latest_run,
    lifecycle_snapshots,
)
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.bootstrap import Context


def kpi_frame(
    ctx: Context, since: date | None = None, until: date | None = None, monthly: bool = False
) -> pd.DataFrame:
    """NPS with margin of error, CSAT, CES, repeat rate (and monthly retention/churn)."""
    data = engine.load(ctx, analytics_connection(ctx), ("orders", "survey_answers"))
    start = kpi.day_of(since) if since else None
    end = kpi.day_of(until + timedelta(days=1)) if until else None
    answers, orders = data["survey_answers"], data["orders"]
    n = kpi.nps(answers, start_day=start, end_day=end, by_month=monthly).to_pandas()
    c = kpi.csat_ces(answers, start_day=start, end_day=end, by_month=monthly).to_pandas()
    r = kpi.repeat_rate(orders, start_day=start, end_day=end, by_month=monthly).to_pandas()
    n = n[[*(["month"] if monthly else []), "responses", "nps", "margin_of_error",
           "promoter_share", "passive_share", "detractor_share"]]  # fmt: skip
    if not monthly:
        frame = n.join(c).join(r) if len(n) and len(c) and len(r) else n
        return frame.rename(columns={"responses": "nps_responses"})
    frame = n.merge(c, on="month", how="outer").merge(r, on="month", how="outer")
    months = sorted(int(m) for m in frame["month"].dropna())
    if months:
        ret = kpi.retention(
            orders, months=months, window_days=ctx.settings.churn_window_days
        ).to_pandas()
        frame = frame.merge(ret[["month", "retention_rate", "churn_rate"]], on="month", how="left")
    frame = frame.sort_values("month")
    frame["month"] = [kpi.month_label(int(m)) for m in frame["month"]]
    return frame.rename(columns={"responses": "nps_responses"}).reset_index(drop=True)


def cohort_frame(ctx: Context, value: str = "share") -> pd.DataFrame:
    """The cohort retention matrix: first-purchase months down, months since across."""
    data = engine.load(ctx, analytics_connection(ctx), ("orders",))
    long = cohorts.cohort_retention(data["orders"]).to_pandas()
    return cohorts.as_matrix(long, value)


def segment_table(ctx: Context) -> list[dict[str, Any]]:
    """Customers, mean spend, CLV and P(alive) per RFM segment in the latest run."""
    from kizuna.analytics.rfm import SEGMENTS

    run = latest_run(ctx)
    s = customer_scores
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                s.c.rfm_segment,
                sa.func.count(),
                sa.func.avg(s.c.total_amount),
                sa.func.avg(s.c.clv),
                sa.func.avg(s.c.p_alive),
            )
            .where(s.c.run_id == run.id)
            .group_by(s.c.rfm_segment)
        ).all()
    by_key = {r[0]: r for r in rows}
    return [
        {
            "segment": seg.key,
            "customers": int(by_key[seg.key][1]),
            "mean_spend": float(by_key[seg.key][2]),
            "mean_clv": float(by_key[seg.key][3]),
            "mean_p_alive": float(by_key[seg.key][4]),
        }
        for seg in SEGMENTS
        if seg.key in by_key
    ]


def scores_frame(ctx: Context, run_version: int | None = None) -> pd.DataFrame:
    """Per-customer scores of a run (default: the latest), with external customer ids."""
    import pandas as pd

    from kizuna.store.scoring_tables import scoring_runs

    with ctx.engine.connect() as conn:
        found: int | None = None
        if run_version is None:
            found = latest_run(ctx).id
        else:
            found = conn.execute(
                sa.select(scoring_runs.c.id).where(scoring_runs.c.version == run_version)
            ).scalar()
            if found is None:
                raise NotFound(f"no scoring run with version {run_version}")
        cols = [c for c in customer_scores.c if c.name not in ("run_id", "customer_id")]
        query = (
            sa.select(t.customers.c.external_id.label("customer_id"), *cols)
            .select_from(
                customer_scores.join(t.customers, t.customers.c.id == customer_scores.c.customer_id)
            )
            .where(customer_scores.c.run_id == found)
            .order_by(t.customers.c.external_id)
        )
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["customer_id", *(c.name for c in cols)])


def lifecycle_frames(ctx: Context, months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stage counts per month for the last ``months`` months, last month's transitions).

    The months end with the month of the latest order; the transitions are
    those into that month, as a from × to matrix.
    """
    from kizuna.analytics import lifecycle

    data = engine.load(ctx, analytics_connection(ctx))
    last = data.arrow["orders"]["ordered_at_month"]
    if len(last) == 0:
        raise NotFound("no orders yet; import orders first")
    end = int(max(last.to_pylist()))
    span = list(range(end - months + 1, end + 1))
    snaps = lifecycle_snapshots(ctx, data, span)
    trend = lifecycle.stage_counts(snaps).to_pandas()
    trend = trend.pivot(index="month", columns="stage", values="customers").fillna(0).astype(int)
    trend = trend.reindex(columns=[s for s in lifecycle.STAGES if s in trend.columns])
    trend.index = [kpi.month_label(int(m)) for m in trend.index]
    moves = lifecycle.transitions(snaps).to_pandas()
    moves = moves[moves.month == end].fillna({"from_stage": "(first purchase)"})
    matrix = moves.pivot(index="from_stage", columns="to_stage", values="customers").fillna(0)
    return trend, matrix.astype(int)


def drivers_frame(
    ctx: Context, since: date | None = None, until: date | None = None
) -> pd.DataFrame:
    """Key drivers of NPS with effect sizes and 95% confidence intervals."""
    from kizuna.analytics import drivers

    data = engine.load(ctx, analytics_connection(ctx))
    frame = drivers.driver_frame(
        data["survey_answers"],
        contacts=data["contacts"],
        community=data["community_activity"],
        orders=data["orders"],
        reviews=data["reviews"],
        referrals=data["referrals"],
        start_day=kpi.day_of(since) if since else None,
        end_day=kpi.day_of(until + timedelta(days=1)) if until else None,
    )
    return drivers.key_drivers(frame)


def loyalty_trend_frame(ctx: Context, months: int = 12, until: date | None = None) -> pd.DataFrame:
    """Monthly trend of historical LTV, loyal customers' revenue share and mean P(alive).

    One row per month end for the last ``months`` months up to ``until``
    (default: the month of the latest order); the running month counts up to
    ``until`` only. P(alive) uses the BG/NBD parameters of the latest scoring
    run, or, before any run, a BG/NBD fit on the histories at the last month
    end (``bgnbd_source`` says which).
    """
    from kizuna.analytics import trends

    data = engine.load(ctx, analytics_connection(ctx))
    days = data.arrow["orders"]["ordered_at_day"]
    if len(days) == 0:
        raise NotFound("no orders yet; import orders first")
    end_day = kpi.day_of(until) + 1 if until else int(max(days.to_pylist())) + 1
    last = kpi.date_of(end_day - 1)
    end = last.year * 12 + last.month - 1
    span = list(range(end - months + 1, end + 1))
    snaps = lifecycle_snapshots(ctx, data, span, end_day=end_day)
    params, source = _bgnbd_params(ctx, data["orders"], end_day)
    frame = trends.monthly_loyalty_trends(
        data["orders"], span, stages=snaps, bgnbd_params=params, end_day=end_day
    ).to_pandas()
    frame["month"] = [kpi.month_label(int(m)) for m in frame["month"]]
    frame["bgnbd_source"] = source
    return frame.reset_index(drop=True)


def _bgnbd_params(ctx: Context, orders: Any, end_day: int) -> tuple[list[float], str]:
    """BG/NBD parameters in weeks: the latest run's, or fitted now on the data up to ``end_day``."""
    from kizuna.analytics import summary
    from kizuna.analytics.clv import bgnbd

    try:
        run = latest_run(ctx)
    except NotFound:
        run = None
    if run is not None and run.models.get("time_unit") == "weeks" and "bgnbd" in run.models:
        p = run.models["bgnbd"]["params"]
        return [float(p[k]) for k in bgnbd.NAMES], f"scoring run v{run.version}"
    summ = summary.transaction_summary(orders, end_day=end_day, unit_days=7.0)
    hist = summ.group_by(["frequency", "recency", "T"]).aggregate(n=summ.count()).to_pyarrow()
    fit = bgnbd.fit(
        hist["frequency"].to_numpy(),
        hist["recency"].to_numpy(),
        hist["T"].to_numpy(),
        weights=hist["n"].to_numpy(),
    )
    return [fit.params[k] for k in bgnbd.NAMES], "fitted on the data up to the last day"
