"""Customer-success pages: account health and touch models, intent surges, the monthly report.

The pages read what ``kizuna health compute`` and ``kizuna intent compute``
stored (the same service functions as the CLI and the API); every table has
a CSV export, and the report page downloads the same file ``kizuna report``
writes. Account names are company names, not personal data; the pages show
no person.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from kizuna.analytics.health import COMPONENTS
from kizuna.domain.clock import local_date
from kizuna.errors import NotFound, ValidationError
from kizuna.reports import data as report_data
from kizuna.reports import monthly
from kizuna.services import health, intent
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.render import render, translator

router = APIRouter()
FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}
BANDS = ("healthy", "watch", "at_risk")
TOUCH = ("high_touch", "low_touch", "tech_touch", "community_touch")
HEALTH_CSV = (
    "account", "name", "computed_on", "score", "band", "touch_model", "members",
    "active_members", "revenue", "renewal_date", *COMPONENTS, "trend",
)  # fmt: skip


def sparkline(points: list[float]) -> str:
    """A tiny inline SVG of a health trend (0-100), for a table cell."""
    if len(points) < 2:
        return ""
    w, h = 80, 20
    step = w / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{h - h * max(0.0, min(100.0, p)) / 100:.1f}" for i, p in enumerate(points)
    )
    colour = "#2f7d4a" if points[-1] >= points[0] else "#b3402f"
    return (
        f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-hidden="true">'
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/></svg>'
    )


def _accounts(request: Request) -> list[dict[str, Any]] | None:
    try:
        rows = health.account_list(context_of(request))
    except NotFound:
        return None
    band = request.query_params.get("band", "")
    touch = request.query_params.get("touch", "")
    return [
        r for r in rows
        if (band not in BANDS or r["band"] == band) and (touch not in TOUCH or r["touch_model"] == touch)
    ]  # fmt: skip


@router.get("/success/health")
def health_page(request: Request, user: AnyUser) -> Response:
    rows = _accounts(request)
    tr = translator(request)
    chart = None
    if rows:
        counts = {(r["touch_model"], r["band"]): 0 for r in rows}
        for r in rows:
            counts[(r["touch_model"], r["band"])] += 1
        chart = {
            "data": [
                {
                    "type": "bar", "name": tr(f"success.bands.{b}"),
                    "x": [tr(f"success.touch_models.{m}") for m in TOUCH],
                    "y": [counts.get((m, b), 0) for m in TOUCH],
                    "marker": {"color": {"healthy": "#3a9d5d", "watch": "#c9a227", "at_risk": "#b3402f"}[b]},
                }
                for b in BANDS
            ],
            "layout": {
                "barmode": "stack", "height": 300, "margin": {"l": 50, "r": 20, "t": 10, "b": 50},
                "legend": {"orientation": "h", "y": -0.25}, "font": FONT,
                "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            },
        }  # fmt: skip
    return render(
        request,
        "success/health.html",
        rows=rows,
        chart=chart,
        bands=BANDS,
        touch_models=TOUCH,
        band=request.query_params.get("band", ""),
        touch=request.query_params.get("touch", ""),
        sparkline=sparkline,
        components=COMPONENTS,
    )


@router.get("/success/health.csv")
def health_csv(request: Request, user: AnyUser) -> Response:
    rows = _accounts(request)
    if rows is None:
        raise HTTPException(
            status_code=404, detail="no health run yet; run `kizuna health compute`"
        )
    return csv_response(
        context_of(request).engine, user, "account_health", HEALTH_CSV,
        ([*(r[c] for c in HEALTH_CSV[:-1]), " ".join(str(x) for x in r["trend"])] for r in rows),
    )  # fmt: skip


def _topic(request: Request) -> str | None:
    value = request.query_params.get("topic", "").strip()
    return value[:200] or None


@router.get("/success/intent")
def intent_page(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    topic = _topic(request)
    try:
        topics = intent.topic_summary(ctx)
        rows = intent.surging(ctx, topic)
    except NotFound:
        return render(request, "success/intent.html", topics=None, rows=[], topic=topic, chart=None)
    tr = translator(request)
    shown = [t_ for t_ in topics if t_["accounts_active"]][:20]
    chart = {
        "data": [
            {"type": "bar", "name": tr("success.accounts_active"), "x": [t_["topic"] for t_ in shown],
             "y": [t_["accounts_active"] for t_ in shown], "marker": {"color": "#9bb7d9"}},
            {"type": "bar", "name": tr("success.accounts_surging"), "x": [t_["topic"] for t_ in shown],
             "y": [t_["accounts_surging"] for t_ in shown], "marker": {"color": "#c2185b"}},
        ],
        "layout": {
            "barmode": "group", "height": 300, "margin": {"l": 50, "r": 20, "t": 10, "b": 80},
            "legend": {"orientation": "h", "y": -0.35}, "font": FONT,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        },
    }  # fmt: skip
    week = topics[0]["week_start"] if topics else None
    return render(
        request, "success/intent.html", topics=topics, rows=rows, topic=topic, chart=chart,
        week=week,
    )  # fmt: skip


@router.get("/success/intent.csv")
def intent_csv(request: Request, user: AnyUser) -> Response:
    try:
        rows = intent.surging(context_of(request), _topic(request), limit=10_000)
    except NotFound:
        raise HTTPException(
            status_code=404, detail="no intent yet; run `kizuna intent compute`"
        ) from None
    header = (
        "account",
        "name",
        "topic",
        "week_start",
        "visits",
        "people",
        "baseline",
        "z",
        "p_value",
        "score",
    )
    return csv_response(
        context_of(request).engine, user, "intent_surging", header,
        ([r[c] for c in header] for r in rows),
    )  # fmt: skip


@router.get("/success/reports")
def reports_page(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    default = report_data.previous_month(local_date(datetime.now(UTC), ctx.settings.tz))
    return render(
        request, "success/reports.html", month=request.query_params.get("month") or f"{default:%Y-%m}",
    )  # fmt: skip


@router.get("/success/reports/monthly.{ext}")
def report_download(request: Request, ext: str, user: AnyUser) -> Response:
    if ext not in ("html", "pdf"):
        raise HTTPException(status_code=404, detail="the report is html or pdf")
    lang = request.query_params.get("lang") or translator(request).language
    try:
        if lang not in ("ja", "en"):
            raise ValidationError("lang must be ja or en")
        first = report_data.parse_month(request.query_params.get("month", ""))
        html = monthly.render_html(report_data.collect(context_of(request), first), lang)
    except ValidationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    name = monthly.default_name(first, lang, pdf=ext == "pdf")
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if ext == "html":
        return HTMLResponse(html, headers=headers)
    with tempfile.TemporaryDirectory() as folder:
        pdf = monthly.render_pdf(html, Path(folder) / name).read_bytes()
    return Response(pdf, media_type="application/pdf", headers=headers)


register_router(router)
register(NavItem("success_health", "/success/health", "success.nav_health", ALL_ROLES, 62))
register(NavItem("success_intent", "/success/intent", "success.nav_intent", ALL_ROLES, 63))
register(NavItem("success_reports", "/success/reports", "success.nav_reports", ALL_ROLES, 64))
