"""Every number of the monthly loyalty report, gathered from the analytics functions.

The report must never compute a KPI its own way: each section calls the same
function the CLI and dashboard call (:mod:`kizuna.services.analytics_queries`,
:mod:`kizuna.analytics.lifecycle`, :mod:`kizuna.analytics.cohorts`,
:mod:`kizuna.services.measures`, :mod:`kizuna.services.survey_feedback`), so
the report and the dashboard always agree. This module only chooses the
window: the twelve months ending with the report month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kizuna.domain.clock import local_day_start
from kizuna.errors import NotFound, ValidationError

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.analytics.engine import Dataset
    from kizuna.bootstrap import Context

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
TREND_MONTHS = 12
#: KPIs whose month-on-month change the commentary describes, and whether up is good.
COMMENTED: tuple[tuple[str, bool], ...] = (
    ("nps", True),
    ("csat", True),
    ("ces", True),  # CES 2.0: 1-7 agreement that it was easy, higher is better
    ("repeat_rate", True),
    ("retention_rate", True),
    ("churn_rate", False),
    ("loyal_customers", True),
)


#: Changes smaller than this read as "stayed the same" (rates: 0.1 point).
FLAT = {
    "csat": 0.0005, "repeat_rate": 0.0005, "retention_rate": 0.0005, "churn_rate": 0.0005,
    "loyal_customers": 0.5,
}  # fmt: skip


def parse_month(text: str) -> date:
    """``YYYY-MM`` into the month's first day; a clear error otherwise."""
    found = MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or not 1900 <= int(found.group(1)) <= 2999:
        raise ValidationError(f"month {text!r} is not YYYY-MM (for example 2026-10)")
    return date(int(found.group(1)), int(found.group(2)), 1)


def previous_month(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_number(first: date) -> int:
    """The analytics' month number, ``year * 12 + month - 1``."""
    return first.year * 12 + first.month - 1


@dataclass
class ReportData:
    """What the monthly report shows; every frame is already limited to the window."""

    month: date
    generated_at: datetime
    kpis: pd.DataFrame  #: one row per month label, analytics_queries.kpi_frame columns
    stages: pd.DataFrame  #: month label x lifecycle stage -> customers
    flows: pd.DataFrame  #: from stage x to stage -> customers, into the report month
    cohorts: pd.DataFrame  #: cohort label x months since -> share; "customers" column first
    loyalty: dict[str, int] | None  #: latest scoring run's loyalty matrix counts
    loyalty_run: str | None
    measures: list[dict[str, Any]]
    themes: list[dict[str, Any]]
    themes_source: str  #: "text_analysis" or "comment_counts"
    comments: int
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.month.year:04d}-{self.month.month:02d}"


def collect(ctx: Context, month: date) -> ReportData:
    """Gather the report of ``month`` (its first day) from the workspace."""
    from kizuna.services import analytics_queries as q

    first = month.replace(day=1)
    last = _add_months(first, 1) - timedelta(days=1)
    start = _add_months(first, -(TREND_MONTHS - 1))
    kpis = q.kpi_frame(ctx, start, last, monthly=True)
    if kpis.empty or first.strftime("%Y-%m") not in set(kpis["month"]):
        raise NotFound(
            f"no orders or survey answers in {first:%Y-%m}; import data for that month "
            "or choose another with --month"
        )
    from kizuna.analytics import engine
    from kizuna.services.scoring import analytics_connection

    # One extraction serves the lifecycle and the cohorts (the largest cost).
    dataset = engine.load(ctx, analytics_connection(ctx))
    stages, flows = _lifecycle(ctx, dataset, first)
    data = ReportData(
        month=first,
        generated_at=datetime.now(UTC),
        kpis=kpis.reset_index(drop=True),
        stages=stages,
        flows=flows,
        cohorts=_cohorts(dataset, first),
        loyalty=None,
        loyalty_run=None,
        measures=_measures(ctx),
        themes=[],
        themes_source="text_analysis",
        comments=0,
    )
    _loyalty(ctx, data)
    _themes(ctx, data, first, _add_months(first, 1))
    data.changes = changes(data)
    return data


def _lifecycle(ctx: Context, data: Dataset, first: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stage counts for the window and the transitions into the report month.

    The same computation as :func:`kizuna.services.analytics_queries.lifecycle_frames`,
    ending at the report month instead of the month of the latest order.
    """
    from kizuna.analytics import kpi, lifecycle
    from kizuna.services.scoring import lifecycle_snapshots

    end = month_number(first)
    span = list(range(end - TREND_MONTHS + 1, end + 1))
    snaps = lifecycle_snapshots(ctx, data, span)
    trend = lifecycle.stage_counts(snaps).to_pandas()
    trend = trend.pivot(index="month", columns="stage", values="customers").fillna(0).astype(int)
    trend = trend.reindex(columns=[s for s in lifecycle.STAGES if s in trend.columns])
    trend.index = [kpi.month_label(int(m)) for m in trend.index]
    moves = lifecycle.transitions(snaps).to_pandas()
    moves = moves[moves.month == end].fillna({"from_stage": "first_purchase"})
    matrix = moves.pivot(index="from_stage", columns="to_stage", values="customers").fillna(0)
    return trend, matrix.astype(int)


def _cohorts(data: Dataset, first: date) -> pd.DataFrame:
    from kizuna.analytics import cohorts

    long = cohorts.cohort_retention(data["orders"], end_month=month_number(first) + 1).to_pandas()
    if long.empty:
        return long
    long = long[long["cohort"] > month_number(first) - TREND_MONTHS]
    matrix = cohorts.as_matrix(long, "share")
    keep = ["customers", *[c for c in matrix.columns if c != "customers" and int(c) < TREND_MONTHS]]
    return matrix[keep]


def _loyalty(ctx: Context, data: ReportData) -> None:
    from kizuna.services.scoring import latest_run

    try:
        run = latest_run(ctx)
    except NotFound:
        return
    data.loyalty = {str(k): int(v) for k, v in run.kpis.get("loyalty_counts", {}).items()}
    data.loyalty_run = f"v{run.version} ({run.as_of})"


def _measures(ctx: Context) -> list[dict[str, Any]]:
    from kizuna.services import measures
    from kizuna.services.uow import UnitOfWork

    out = []
    for rep in measures.report_all(UnitOfWork(ctx.engine, ctx.settings)):
        doc = measures.as_dict(rep)
        if rep.treated.customers or rep.holdout.customers or rep.kpi:
            out.append(doc)
    return out


def _themes(ctx: Context, data: ReportData, first: date, after: date) -> None:
    """Top feedback themes of the month, from the text analysis of survey comments."""
    tz = ctx.settings.tz
    since, until = local_day_start(first, tz), local_day_start(after, tz)
    try:
        from kizuna.services.survey_feedback import load_docs, theme_summary
    except ImportError:  # pragma: no cover - the text analysis is part of the package
        data.themes_source = "comment_counts"
        data.comments = _comment_count(ctx, since, until)
        return
    docs = load_docs(ctx.engine, ctx.settings, ("survey",), since, until)
    data.comments = len(docs)
    data.themes = [
        {
            "theme": s.theme, "mentions": s.mentions, "share": s.share,
            "detractor_share": s.detractor_share, "promoter_share": s.promoter_share,
            "sentiment": s.mean_sentiment,
        }
        for s in theme_summary(docs)
        if s.mentions
    ][:6]  # fmt: skip


def _comment_count(ctx: Context, since: datetime, until: datetime) -> int:
    import sqlalchemy as sa

    from kizuna.store import tables as t

    a = t.survey_answers
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    a.c.comment.isnot(None), a.c.answered_at >= since, a.c.answered_at < until
                )
            ).scalar_one()
        )


def loyal_count(stages: pd.DataFrame, label: str) -> int | None:
    """Loyal plus ambassador customers at the end of month ``label``."""
    if label not in stages.index:
        return None
    present = [s for s in ("loyal", "ambassador") if s in stages.columns]
    return int(stages.loc[[label], present].to_numpy().sum())


def changes(data: ReportData) -> list[dict[str, Any]]:
    """Month-on-month movement of the commented KPIs: what went up, what went down."""
    import math

    kpis = data.kpis.set_index("month")
    label = data.label
    before_label = f"{previous_month(data.month):%Y-%m}"
    out: list[dict[str, Any]] = []
    for name, up_is_good in COMMENTED:
        now: Any
        before: Any
        if name == "loyal_customers":
            now, before = loyal_count(data.stages, label), loyal_count(data.stages, before_label)
        else:
            if (
                name not in kpis.columns
                or label not in kpis.index
                or before_label not in kpis.index
            ):
                continue
            now, before = kpis.at[label, name], kpis.at[before_label, name]
        if now is None or before is None:
            continue
        now_f, before_f = float(now), float(before)
        if math.isnan(now_f) or math.isnan(before_f):
            continue
        delta = now_f - before_f
        direction = "flat" if abs(delta) < FLAT.get(name, 0.05) else ("up" if delta > 0 else "down")
        good = None if direction == "flat" else (direction == "up") == up_is_good
        out.append(
            {"kpi": name, "before": before_f, "now": now_f, "delta": delta,
             "direction": direction, "good": good}
        )  # fmt: skip
    return out
