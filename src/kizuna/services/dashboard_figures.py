"""The analytics pages' figures, through :mod:`kizuna.services.run_artefacts`.

Each function returns exactly what the matching query of
:mod:`kizuna.services.analytics_queries` (or the page's own aggregate)
returns, read from one stored row instead of recomputed per request:

* of the latest run (fixed with it): the loyalty matrix's counts and revenue,
  the RFM segment table;
* of the data (the latest import, fingerprinted): the overview's workspace
  summary, the monthly KPIs, the cohort matrix, the lifecycle trend and
  transitions, the feedback themes and detractor/promoter terms.

Importing the module registers them all with :func:`run_artefacts.register`,
so the end of every scoring run stores them (:func:`run_artefacts.precompute`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.analytics import loyalty as loyalty_mod
from kizuna.analytics.text.themes import ThemeChurn, ThemeMonth
from kizuna.domain.clock import local_date, local_day_start
from kizuna.services import run_artefacts as ra
from kizuna.services.summary import COUNTED_TABLES, MonthRevenue, Summary, workspace_summary
from kizuna.services.survey_feedback import TermContrast, ThemeSummary
from kizuna.store.scoring_tables import customer_scores

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.bootstrap import Context
    from kizuna.services.scoring import RunInfo

#: What the extract of the analytics engine reads (orders net of returns, answers...).
ANALYTICS_TABLES = (
    "orders",
    "returns",
    "survey_answers",
    "reviews",
    "referrals",
    "community_activity",
    "contacts",
)


def _salt(ctx: Context) -> str:
    """Settings that change these figures: a new value must not read the old ones."""
    s = ctx.settings
    return f"{s.timezone};{s.currency};{s.currency_exponent};{s.churn_window_days}"


def _for_data(ctx: Context, key: str, tables: tuple[str, ...], make: Any, extra: str = "") -> Any:
    salt = hashlib.sha256(_salt(ctx).encode()).hexdigest()[:16]
    return ra.for_data(ctx, f"{key}@{salt}", tables, make, extra)


# --- the overview ------------------------------------------------------------------------


def _summary_doc(s: Summary) -> dict[str, Any]:
    doc = s.to_dict()
    doc["first_order_on"] = s.first_order_on.isoformat() if s.first_order_on else None
    doc["last_order_on"] = s.last_order_on.isoformat() if s.last_order_on else None
    return doc


def _summary_of(doc: dict[str, Any]) -> Summary:
    def day(text: str | None) -> date | None:
        return date.fromisoformat(text) if text else None

    return Summary(
        counts={k: int(v) for k, v in doc["counts"].items()},
        customers_with_orders=int(doc["customers_with_orders"]),
        first_order_on=day(doc["first_order_on"]),
        last_order_on=day(doc["last_order_on"]),
        gross_revenue=int(doc["gross_revenue"]),
        refunds=int(doc["refunds"]),
        revenue=int(doc["revenue"]),
        revenue_by_month=tuple(
            MonthRevenue(
                date.fromisoformat(m["month"] + "-01"),
                m["orders"],
                m["gross"],
                m["refunds"],
                m["net"],
            )  # fmt: skip
            for m in doc["revenue_by_month"]
        ),
        currency=doc["currency"],
        timezone=doc["timezone"],
    )


def summary(ctx: Context) -> Summary:
    """:func:`workspace_summary`, recomputed only when a counted table changed."""
    doc = _for_data(
        ctx,
        "summary",
        COUNTED_TABLES,
        lambda: _summary_doc(workspace_summary(ctx.engine, ctx.settings)),
    )
    return _summary_of(doc)


# --- data-level analytics ------------------------------------------------------------------


def monthly_kpis(ctx: Context) -> pd.DataFrame:
    """``analytics_queries.kpi_frame(ctx, monthly=True)``."""
    from kizuna.services import analytics_queries as queries

    tables = ("orders", "returns", "survey_answers")
    return ra.doc_frame(
        _for_data(
            ctx, "kpis_monthly", tables, lambda: ra.frame_doc(queries.kpi_frame(ctx, monthly=True))
        )  # fmt: skip
    )


def cohorts(ctx: Context) -> pd.DataFrame:
    """``analytics_queries.cohort_frame(ctx)`` (its errors pass through, nothing stored)."""
    from kizuna.services import analytics_queries as queries

    return ra.doc_frame(
        _for_data(
            ctx, "cohorts", ("orders", "returns"), lambda: ra.frame_doc(queries.cohort_frame(ctx))
        )  # fmt: skip
    )


def lifecycle(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``analytics_queries.lifecycle_frames(ctx)``: (stage counts by month, transitions)."""
    from kizuna.services import analytics_queries as queries

    def make() -> dict[str, Any]:
        trend, matrix = queries.lifecycle_frames(ctx)
        return {"trend": ra.frame_doc(trend), "matrix": ra.frame_doc(matrix)}

    doc = _for_data(ctx, "lifecycle", ANALYTICS_TABLES, make)
    return ra.doc_frame(doc["trend"]), ra.doc_frame(doc["matrix"])


# --- run-level figures -----------------------------------------------------------------------


def matrix_counts(ctx: Context, run: RunInfo) -> dict[str, tuple[int, int]]:
    """(customers, revenue in minor units) per loyalty class of ``run``."""

    def make() -> dict[str, list[int]]:
        s = customer_scores
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.c.loyalty, sa.func.count(), sa.func.sum(s.c.total_amount))
                .where(s.c.run_id == run.id)
                .group_by(s.c.loyalty)
            ).all()
        return {str(r[0]): [int(r[1]), int(r[2] or 0)] for r in rows}

    found = ra.for_run(ctx, run, "matrix", make)
    return {c: (found[c][0], found[c][1]) if c in found else (0, 0) for c in loyalty_mod.CLASSES}


def segment_table(ctx: Context, run: RunInfo) -> list[dict[str, Any]]:
    """``analytics_queries.segment_table(ctx)`` for ``run`` (the latest)."""
    from kizuna.services import analytics_queries as queries

    return list(ra.for_run(ctx, run, "rfm", lambda: queries.segment_table(ctx)))


def _precompute_run(ctx: Context, run: RunInfo, data: Any = None) -> None:
    matrix_counts(ctx, run)
    segment_table(ctx, run)


def _precompute_data(ctx: Context, run: RunInfo, data: Any = None) -> None:
    from kizuna.errors import NotFound

    summary(ctx)
    for figure in (monthly_kpis, cohorts, lifecycle):
        # Without the data the page says so on each view, as before.
        with contextlib.suppress(NotFound, KeyError, ValueError):
            figure(ctx)


ra.register("analytics_run", _precompute_run)
ra.register("analytics_data", _precompute_data)


# --- voice of the customer ---------------------------------------------------------------

#: What the comment pages read.
FEEDBACK_TABLES = ("survey_answers", "contacts", "reviews")


@dataclass(frozen=True)
class FeedbackThemes:
    """``/voice/themes``: how many comments, theme summary and detractor/promoter terms."""

    docs: int
    summary: list[ThemeSummary]
    contrast: list[TermContrast]


def feedback_themes(ctx: Context, sources: tuple[str, ...]) -> FeedbackThemes:
    """``survey_feedback.theme_summary`` and ``compare`` of ``load_docs(sources)``.

    Tokenising every comment took minutes on a million customers' feedback;
    stored per state of the comment tables.
    """
    from kizuna.services import survey_feedback as sf

    def make() -> dict[str, Any]:
        docs = sf.load_docs(ctx.engine, ctx.settings, sources)
        return {
            "docs": len(docs),
            "summary": [dataclasses.asdict(r) for r in sf.theme_summary(docs)],
            "contrast": [dataclasses.asdict(r) for r in sf.compare(docs)],
        }

    doc = _for_data(ctx, f"voice_themes:{'+'.join(sources)}", FEEDBACK_TABLES, make)
    return FeedbackThemes(
        int(doc["docs"]),
        [ThemeSummary(**r) for r in doc["summary"]],
        [TermContrast(**r) for r in doc["contrast"]],
    )


@dataclass(frozen=True)
class FeedbackTrends:
    """``/voice/trends``: theme share by month, and churn of customers by theme mentioned."""

    trends: list[ThemeMonth]
    churn: list[ThemeChurn]
    as_of: datetime


def feedback_trends(
    ctx: Context, sources: tuple[str, ...], day: date | None = None
) -> FeedbackTrends:
    """``survey_feedback.trends`` and ``churn_by_theme`` of ``load_docs(sources)``.

    Tokenising every comment per request took minutes on a million
    customers' feedback. Stored per state of the comment and order tables
    and per day: churn counts a comment once its whole window has passed,
    so the figures are as of the start of ``day`` (default today) in the
    workspace timezone, and exact for the whole day.
    """
    from kizuna.services import survey_feedback as sf

    tz = ctx.settings.tz
    today = day or local_date(datetime.now(UTC), tz)
    as_of = local_day_start(today, tz)

    def make() -> dict[str, Any]:
        docs = sf.load_docs(ctx.engine, ctx.settings, sources)
        churn = sf.churn_by_theme(ctx.engine, ctx.settings, docs, as_of=as_of)
        return {
            "trends": [dataclasses.asdict(r) for r in sf.trends(docs)],
            "churn": [dataclasses.asdict(r) for r in churn],
        }

    key = f"voice_trends:{'+'.join(sources)}"
    doc = _for_data(ctx, key, (*FEEDBACK_TABLES, "orders"), make, extra=today.isoformat())
    return FeedbackTrends(
        [ThemeMonth(**r) for r in doc["trends"]], [ThemeChurn(**r) for r in doc["churn"]], as_of
    )


def _precompute_feedback(ctx: Context, run: RunInfo, data: Any = None) -> None:
    from kizuna.services import survey_feedback as sf

    feedback_themes(ctx, sf.SOURCES)
    feedback_trends(ctx, sf.SOURCES)


ra.register("feedback", _precompute_feedback)
