"""Voice-of-the-customer pages: feedback themes, trends, detractor comments, surveys.

The numbers are the ones ``kizuna feedback ...`` and ``kizuna survey list``
print (the same service functions); every table has a CSV export. Comments
are free text written by customers, so analysts — who see customers masked
everywhere else — get names and e-mails masked and any e-mail address or
phone number *inside* a comment blanked, on the page and in the export.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kizuna.analytics.text import DEFAULT_THEMES
from kizuna.services import dashboard_figures as figures
from kizuna.services import survey_feedback as sf
from kizuna.services.surveys import survey_stats
from kizuna.services.users import User
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.render import render, translator

router = APIRouter()
FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}
TOP_TERMS = 15
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\- ()]{7,}\d")


def mask_comment(text: str | None, visible: bool) -> str | None:
    """A comment as its reader may see it: contact details blanked for analysts."""
    if visible or not text:
        return text
    return _PHONE.sub("***", _EMAIL.sub("***@***", text))


def _source(request: Request) -> tuple[str, ...]:
    wanted = request.query_params.get("source", "")
    return (wanted,) if wanted in sf.SOURCES else sf.SOURCES


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 140, "r": 30, "t": 10, "b": 50},
        "height": 420,
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        **extra,
    }


def _theme_label(request: Request, theme: str) -> str:
    return translator(request)(f"voice.theme.{theme}")


# --- themes ---------------------------------------------------------------------


def _themes(request: Request) -> figures.FeedbackThemes:
    """Themes and terms of the chosen sources, stored per state of the comments."""
    return figures.feedback_themes(context_of(request), _source(request))


@router.get("/voice/themes")
def themes_page(request: Request, user: AnyUser) -> Response:
    found = _themes(request)
    summary, contrast = found.summary, found.contrast
    ends = contrast[:TOP_TERMS] + contrast[max(TOP_TERMS, len(contrast) - TOP_TERMS) :][::-1]
    terms = [r for r in ends if r.z]
    chart = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [r.term for r in reversed(terms)],
                "x": [round(r.z, 2) for r in reversed(terms)],
                "marker": {"color": ["#c62828" if r.z > 0 else "#2e7d32" for r in reversed(terms)]},
                "hovertemplate": "%{y}: z = %{x}<extra></extra>",
            }
        ],
        "layout": _layout(xaxis={"title": {"text": "z"}, "zeroline": True}),
    }
    return render(
        request, "voice/themes.html", docs=found.docs, summary=summary, terms=terms, chart=chart,
        source=request.query_params.get("source", ""), sources=sf.SOURCES,
        label=lambda theme: _theme_label(request, theme),
    )  # fmt: skip


@router.get("/voice/themes.csv")
def themes_csv(request: Request, user: AnyUser) -> Response:
    rows = (
        (r.theme, r.mentions, round(r.share, 4), _round(r.detractor_share),
         _round(r.promoter_share), _round(r.mean_sentiment))
        for r in _themes(request).summary
    )  # fmt: skip
    header = ("theme", "comments", "share", "detractor_share", "promoter_share", "sentiment")
    return csv_response(context_of(request).engine, user, "feedback_themes", header, rows)


@router.get("/voice/terms.csv")
def terms_csv(request: Request, user: AnyUser) -> Response:
    rows = (
        (r.term, r.key, r.count_a, r.count_b, round(r.z, 4), round(r.delta, 4))
        for r in _themes(request).contrast
    )
    header = ("term", "key", "detractor_comments", "promoter_comments", "z", "log_odds")
    return csv_response(context_of(request).engine, user, "feedback_terms", header, rows)


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


# --- trends and churn ------------------------------------------------------------


@router.get("/voice/trends")
def trends_page(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    stored = figures.feedback_trends(ctx, _source(request))
    data = stored.trends
    months = sorted({r.month for r in data})
    cell = {(r.month, r.theme): r for r in data}
    chart = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": _theme_label(request, theme),
                "x": months,
                "y": [round(cell[(m, theme)].share, 4) for m in months],
                "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
            }
            for theme in DEFAULT_THEMES
        ],
        "layout": _layout(margin={"l": 60, "r": 30, "t": 10, "b": 60}, yaxis={"tickformat": ".0%"}),
    }
    churn = stored.churn
    return render(
        request, "voice/trends.html", months=months, cell=cell, themes=list(DEFAULT_THEMES),
        chart=chart, churn=churn, window=ctx.settings.churn_window_days,
        source=request.query_params.get("source", ""), sources=sf.SOURCES,
        label=lambda theme: _theme_label(request, theme),
    )  # fmt: skip


@router.get("/voice/trends.csv")
def trends_csv(request: Request, user: AnyUser) -> Response:
    rows = (
        (r.month, r.theme, r.mentions, r.comments, round(r.share, 4))
        for r in figures.feedback_trends(context_of(request), _source(request)).trends
    )
    header = ("month", "theme", "mentions", "comments", "share")
    return csv_response(context_of(request).engine, user, "feedback_trends", header, rows)


@router.get("/voice/churn.csv")
def churn_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    rows = []
    for r in figures.feedback_trends(ctx, _source(request)).churn:
        diff, low, high = r.difference
        rows.append(
            (r.theme, r.customers_with, r.churned_with, _round(r.rate_with), *map(_round, r.ci_with),
             r.customers_without, r.churned_without, _round(r.rate_without),
             *map(_round, r.ci_without), _round(diff), _round(low), _round(high))
        )  # fmt: skip
    header = ("theme", "customers_with", "churned_with", "rate_with", "ci_with_low",
              "ci_with_high", "customers_without", "churned_without", "rate_without",
              "ci_without_low", "ci_without_high", "difference", "difference_low",
              "difference_high")  # fmt: skip
    return csv_response(ctx.engine, user, "feedback_churn", header, rows)


# --- detractor comments -----------------------------------------------------------


def _detractors(request: Request, user: User) -> list[dict[str, Any]]:
    visible = user.sees_personal_data
    out = []
    for d in sf.detractor_comments(context_of(request).engine):
        out.append(
            {
                "answer_id": d.answer_id, "customer_id": d.customer_id,
                "name": masked("name", d.customer_name, visible),
                "email": masked("email", d.customer_email, visible),
                "survey": d.survey, "score": d.score,
                "comment": mask_comment(d.comment, visible), "answered_at": d.answered_at,
                "sentiment": d.sentiment, "terms": d.terms, "follow_up": d.follow_up,
                "task_title": mask_comment(d.task_title, visible),
            }
        )  # fmt: skip
    return out


@router.get("/voice/detractors")
def detractors_page(request: Request, user: AnyUser) -> Response:
    rows = _detractors(request, user)
    counts = {s: sum(r["follow_up"] == s for r in rows) for s in ("none", "open", "done")}
    return render(request, "voice/detractors.html", rows=rows, counts=counts)


@router.get("/voice/detractors.csv")
def detractors_csv(request: Request, user: AnyUser) -> Response:
    rows = (
        (r["answer_id"], r["customer_id"], r["name"], r["email"], r["survey"], r["score"],
         r["answered_at"].isoformat(), round(r["sentiment"], 3), r["comment"], r["follow_up"],
         r["task_title"])
        for r in _detractors(request, user)
    )  # fmt: skip
    header = ("answer_id", "customer_id", "name", "email", "survey", "score", "answered_at",
              "sentiment", "comment", "follow_up", "task")  # fmt: skip
    return csv_response(context_of(request).engine, user, "detractor_comments", header, rows)


# --- surveys ----------------------------------------------------------------------


@router.get("/voice/surveys")
def surveys_page(request: Request, user: AnyUser) -> Response:
    return render(request, "voice/surveys.html", surveys=survey_stats(context_of(request).engine))


@router.get("/voice/surveys.csv")
def surveys_csv(request: Request, user: AnyUser) -> Response:
    rows = (
        (s.key, s.kind, s.version, s.status, s.title_ja, s.title_en, s.invited, s.answered,
         _round(s.response_rate), s.detractors, s.passives, s.promoters, _round(s.mean_score),
         _round(s.nps))
        for s in survey_stats(context_of(request).engine)
    )  # fmt: skip
    header = ("survey", "kind", "version", "status", "title_ja", "title_en", "invited",
              "answered", "response_rate", "detractors", "passives", "promoters", "mean_score",
              "nps")  # fmt: skip
    return csv_response(context_of(request).engine, user, "surveys", header, rows)


register_router(router)
register(NavItem("voice", "/voice/themes", "voice.nav", ALL_ROLES, 60))
