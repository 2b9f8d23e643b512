"""Personas and key drivers of NPS, from the latest scoring run.

Both read :mod:`kizuna.services.insights`, which clusters and regresses once
per run and caches the result, so these pages show what ``kizuna personas``
and ``kizuna drivers`` print, without waiting for the computation again.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from kizuna.errors import NotFound, ValidationError
from kizuna.services import insights
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.pages_common import ACCENT, layout
from kizuna.web.render import render, translator

router = APIRouter()
MEANS = ("frequency", "recency_days", "total_amount", "p_alive", "attitude_score", "attitude_known")


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _personas(request: Request) -> insights.PersonaView | None:
    try:
        return insights.persona_view(context_of(request))
    except (NotFound, ValidationError):
        return None


def persona_rows(view: insights.PersonaView, lang: str) -> list[dict[str, Any]]:
    """Rows for the page: the words, size and means in readable units (spend un-logged)."""
    rows = []
    for c in view.clusters:
        rows.append(
            {
                "persona": int(c["persona"]),
                "label": c[lang],
                "customers": int(c["customers"]),
                "share": float(c["share"]),
                # The clustering works on log1p of frequency and spend; show the typical value.
                "frequency": math.expm1(c["mean_frequency"]),
                "recency_days": c["mean_recency_days"],
                "spend": round(math.expm1(c["mean_total_amount"])),
                "p_alive": c["mean_p_alive"],
                "attitude": c["mean_attitude_score"],
                "attitude_known": c["mean_attitude_known"],
            }
        )
    return rows


@router.get("/insights/personas")
def personas_page(request: Request, user: AnyUser) -> Response:
    view = _personas(request)
    if view is None:
        return render(request, "analytics_norun.html", title_key="pages.personas_title")
    tr = translator(request)
    rows = persona_rows(view, tr.language)
    chart = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [f"#{r['persona']} {r['label']}" for r in reversed(rows)],
                "x": [r["customers"] for r in reversed(rows)],
                "marker": {"color": ACCENT},
                "hovertemplate": "%{y}: %{x:,d}<extra></extra>",
            }
        ],
        "layout": layout(margin={"l": 320, "r": 20, "t": 10, "b": 40}),
    }
    return render(request, "pages/personas.html", view=view, rows=rows, chart=chart)


@router.get("/insights/personas.csv")
def personas_csv(request: Request, user: AnyUser) -> Response:
    view = _personas(request)
    if view is None:
        raise HTTPException(status_code=404, detail="no scoring run yet; run `kizuna score`")
    header = ("persona", "customers", "share", "en", "ja", *(f"mean_{m}" for m in MEANS))
    rows = (
        (
            c["persona"],
            c["customers"],
            c["share"],
            c["en"],
            c["ja"],
            *(c[f"mean_{m}"] for m in MEANS),
        )
        for c in view.clusters
    )
    return csv_response(
        context_of(request).engine, user, "personas", header, rows, {"run": view.run.version}
    )


def driver_chart(rows: list[dict[str, Any]], lang: str, label: str) -> dict[str, Any]:
    """Each driver's adjusted effect on the 0-10 score, with its 95% interval as error bars."""
    key = "adjusted" if rows and "adjusted" in rows[0] else "difference"
    shown = [r for r in rows if _num(r.get(key)) is not None][::-1]
    est = [float(r[key]) for r in shown]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "orientation": "h",
                "name": label,
                "y": [r[lang] for r in shown],
                "x": est,
                "marker": {"color": [ACCENT if e >= 0 else "#1565c0" for e in est], "size": 10},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (_num(r[f"{key}_high"]) or e) - e for r, e in zip(shown, est, strict=True)
                    ],
                    "arrayminus": [
                        e - (_num(r[f"{key}_low"]) or e) for r, e in zip(shown, est, strict=True)
                    ],
                    "color": "#37474f",
                },
            }
        ],
        "layout": layout(
            margin={"l": 240, "r": 20, "t": 10, "b": 40},
            xaxis={"zeroline": True, "zerolinewidth": 2, "title": {"text": label}},
        ),
    }


@router.get("/insights/drivers")
def drivers_page(request: Request, user: AnyUser) -> Response:
    try:
        view = insights.driver_view(context_of(request))
    except NotFound:
        return render(request, "analytics_norun.html", title_key="pages.drivers_title")
    tr = translator(request)
    rows = [{**r, "label": r[tr.language]} for r in view.rows]
    return render(
        request,
        "pages/drivers.html",
        view=view,
        rows=rows,
        adjusted=bool(rows) and "adjusted" in rows[0],
        chart=driver_chart(view.rows, tr.language, tr("pages.effect_on_score")),
    )


DRIVER_COLUMNS = (
    "driver", "en", "ja", "answers_with", "mean_with", "mean_without", "difference",
    "difference_low", "difference_high", "adjusted", "adjusted_low", "adjusted_high",
    "nps_with", "nps_without",
)  # fmt: skip


@router.get("/insights/drivers.csv")
def drivers_csv(request: Request, user: AnyUser) -> Response:
    try:
        view = insights.driver_view(context_of(request))
    except NotFound:
        raise HTTPException(status_code=404, detail="no scoring run yet") from None
    rows = (tuple(r.get(c) for c in DRIVER_COLUMNS) for r in view.rows)
    return csv_response(
        context_of(request).engine, user, "key_drivers", DRIVER_COLUMNS, rows,
        {"run": view.run.version},
    )  # fmt: skip


register_router(router)
#: One entry for personas, drivers and the journey map (tabs link the three pages).
register(NavItem("insights", "/insights/personas", "pages.nav_insights", ALL_ROLES, 35))
