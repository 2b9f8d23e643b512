"""Overview: what is in the workspace and revenue by month (chart and table).

The figures are :func:`kizuna.services.summary.workspace_summary`, stored once
per state of the data (:mod:`kizuna.services.dashboard_figures`): counting
millions of rows and grouping every order by local month on each visit
took seconds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kizuna.domain.money import from_minor
from kizuna.services.dashboard_figures import summary as stored_summary
from kizuna.services.summary import Summary
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.format import Formatter
from kizuna.web.i18n import Translator
from kizuna.web.render import formatter, render, translator

router = APIRouter()

#: The counts shown as cards, in reading order.
CARDS: tuple[str, ...] = ("customers", "orders", "products", "survey_answers", "events", "reviews")


def revenue_chart(summary: Summary, t: Translator, fmt: Formatter) -> dict[str, Any]:
    """A Plotly figure (data + layout) of net revenue bars and an orders line."""
    months = [fmt.month(m.month) for m in summary.revenue_by_month]
    major = 10**fmt.exponent
    return {
        "data": [
            {
                "type": "bar",
                "name": t("overview.net_revenue"),
                "x": months,
                "y": [m.net / major for m in summary.revenue_by_month],
                "customdata": [fmt.money(m.net) for m in summary.revenue_by_month],
                "hovertemplate": "%{x}<br>%{customdata}<extra></extra>",
                "marker": {"color": "#c2185b"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": t("overview.orders"),
                "x": months,
                "y": [m.orders for m in summary.revenue_by_month],
                "yaxis": "y2",
                "line": {"color": "#37474f", "width": 2},
            },
        ],
        "layout": {
            "margin": {"l": 70, "r": 60, "t": 10, "b": 60},
            "height": 360,
            "legend": {"orientation": "h", "y": -0.2},
            "yaxis": {
                "title": {"text": f"{t('overview.net_revenue')} ({summary.currency})"},
                "rangemode": "tozero",
            },
            "yaxis2": {
                "title": {"text": t("overview.orders")},
                "overlaying": "y",
                "side": "right",
                "tickformat": ",d",
                "tickmode": "auto",
                "rangemode": "tozero",
                "showgrid": False,
            },
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"},
        },
    }


@router.get("/")
def overview(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    summary = stored_summary(ctx)
    t = translator(request)
    fmt = formatter(request, t)
    return render(
        request,
        "overview.html",
        summary=summary,
        cards=CARDS,
        chart=revenue_chart(summary, t, fmt),
        months=list(reversed(summary.revenue_by_month)),
    )


@router.get("/overview/revenue.csv")
def revenue_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    summary = stored_summary(ctx)
    exp = ctx.settings.currency_exponent
    rows = (
        (
            m.month.strftime("%Y-%m"),
            m.orders,
            from_minor(m.gross, exp),
            from_minor(m.refunds, exp),
            from_minor(m.net, exp),
        )
        for m in summary.revenue_by_month
    )
    header = (
        "month",
        "orders",
        f"gross_{summary.currency}",
        f"refunds_{summary.currency}",
        f"net_{summary.currency}",
    )
    return csv_response(ctx.engine, user, "revenue_by_month", header, rows)
