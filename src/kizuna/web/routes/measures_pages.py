"""Measures: each journey's KPI target against its result, uplift with confidence intervals.

Numbers come from :func:`kizuna.services.measures.report` (treated against
hold-out, 95% intervals from :mod:`kizuna.automation.uplift`), exactly what
``kizuna measures report`` prints. The chart draws each journey's uplift as a
point with its interval as error bars, and its target as a marker, so "met
or not" can be read at a glance. Editors register a measure's objective,
KPI and target.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.errors import KizunaError
from kizuna.services import measures as service
from kizuna.services.journey_steps import activity_mark, journey_list
from kizuna.services.users import record_audit
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import register_router
from kizuna.web.pages_common import ACCENT, layout, refused, uow_of
from kizuna.web.render import render, translator

router = APIRouter()


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def result_of(rep: service.EffectReport) -> dict[str, float | None]:
    """The KPI's measured value and its interval (none for a plain conversion rate)."""
    if rep.kpi == "conversion_rate":
        return {"estimate": _num(rep.treated.rate), "low": None, "high": None}
    interval = rep.revenue_uplift if rep.kpi == "revenue_uplift" else rep.conversion_uplift
    return {
        "estimate": _num(interval.estimate),
        "low": _num(interval.low),
        "high": _num(interval.high),
    }


def _row(rep: service.EffectReport) -> dict[str, Any]:
    return {
        "journey": rep.journey,
        "objective": rep.objective,
        "kpi": rep.kpi,
        "target": rep.target,
        "result": result_of(rep),
        "achieved": rep.achieved,
        "goal_days": rep.goal_days,
        "treated": rep.treated,
        "holdout": rep.holdout,
        "treated_rate": _num(rep.treated.rate),
        "holdout_rate": _num(rep.holdout.rate),
        "conversion": {k: _num(v) for k, v in vars(rep.conversion_uplift).items()},
        "revenue": {k: _num(v) for k, v in vars(rep.revenue_uplift).items()},
        "variants": {
            k: {"customers": g.customers, "rate": _num(g.rate)} for k, g in rep.variants.items()
        },
    }


def uplift_chart(rows: list[dict[str, Any]], key: str, label: str, target: str) -> dict[str, Any]:
    """Each journey's uplift as a point with its 95% interval as asymmetric error bars."""
    shown = [r for r in rows if r[key]["estimate"] is not None]
    est = [r[key]["estimate"] for r in shown]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": label,
            "x": [r["journey"] for r in shown],
            "y": est,
            "marker": {"color": ACCENT, "size": 10},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [(r[key]["high"] or e) - e for r, e in zip(shown, est, strict=True)],
                "arrayminus": [e - (r[key]["low"] or e) for r, e in zip(shown, est, strict=True)],
                "color": ACCENT,
            },
        }
    ]
    kpi = "conversion_uplift" if key == "conversion" else "revenue_uplift"
    targets = [r for r in shown if r["kpi"] == kpi and r["target"] is not None]
    if targets:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": target,
                "x": [r["journey"] for r in targets],
                "y": [r["target"] for r in targets],
                "marker": {"symbol": "line-ew-open", "size": 22, "color": "#37474f"},
            }
        )
    return {
        "data": data,
        "layout": layout(
            xaxis={"type": "category"},
            yaxis={"zeroline": True, "tickformat": ".1%" if key == "conversion" else ",.0f"},
        ),
    }


#: How long a cached report is trusted even when nothing seems to have changed.
CACHE_SECONDS = 300.0
_cache: dict[str, tuple[tuple[Any, ...], float, list[dict[str, Any]]]] = {}
_lock = threading.Lock()


def _reports(request: Request) -> list[dict[str, Any]]:
    """Every journey's report; recomputed only when runs, orders or measures changed.

    :func:`service.report_all` reads every run and its customers' orders, a
    second on 20,000 customers; the page answers from the last result while
    :func:`activity_mark` (four index lookups) is unchanged, for at most
    :data:`CACHE_SECONDS`.
    """
    ctx = context_of(request)
    key = f"{ctx.engine.url}|{ctx.settings.workspace}"
    with ctx.engine.connect() as conn:
        mark = activity_mark(conn)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and hit[0] == mark and now - hit[1] < CACHE_SECONDS:
        return hit[2]
    rows = [_row(r) for r in service.report_all(uow_of(request))]
    with _lock:
        _cache[key] = (mark, now, rows)
    return rows


@router.get("/measures")
def measures_page(request: Request, user: AnyUser, saved: str | None = None) -> Response:
    tr = translator(request)
    rows = _reports(request)
    with context_of(request).engine.connect() as conn:
        names = [j["name"] for j in journey_list(conn)]
    return render(
        request,
        "pages/measures.html",
        rows=rows,
        names=names,
        kpis=service.KPIS,
        saved=saved,
        conversion_chart=uplift_chart(
            rows, "conversion", tr("pages.conversion_uplift"), tr("pages.target")
        ),
        revenue_chart=uplift_chart(rows, "revenue", tr("pages.revenue_uplift"), tr("pages.target")),
    )


@router.post("/measures")
async def set_measure(request: Request, user: Editor) -> Response:
    form = await request.form()
    try:
        target = float(str(form.get("target", "")).strip())
    except ValueError:
        return refused(
            request, "pages.measure_refused", "the target must be a number, e.g. 0.05", "/measures"
        )
    command = service.SetMeasure(
        journey=str(form.get("journey", "")),
        objective=str(form.get("objective", "")).strip(),
        kpi=str(form.get("kpi", "")),
        target=target,
    )
    try:
        service.handle_set(command, uow_of(request))
    except KizunaError as exc:
        return refused(request, "pages.measure_refused", str(exc), "/measures")
    record_audit(
        context_of(request).engine, user.username, "measure_set", {"journey": command.journey}
    )
    return RedirectResponse("/measures?saved=1", status_code=303)


@router.get("/measures.csv")
def measures_csv(request: Request, user: AnyUser) -> Response:
    rows = _reports(request)
    header = (
        "journey", "objective", "kpi", "target", "result", "result_low", "result_high",
        "achieved", "treated", "holdout", "treated_rate", "holdout_rate",
        "conversion_uplift", "conversion_low", "conversion_high",
        "revenue_uplift", "revenue_low", "revenue_high",
    )  # fmt: skip
    data = (
        (
            r["journey"], r["objective"], r["kpi"], r["target"],
            r["result"]["estimate"], r["result"]["low"], r["result"]["high"], r["achieved"],
            r["treated"].customers, r["holdout"].customers, r["treated_rate"], r["holdout_rate"],
            r["conversion"]["estimate"], r["conversion"]["low"], r["conversion"]["high"],
            r["revenue"]["estimate"], r["revenue"]["low"], r["revenue"]["high"],
        )
        for r in rows
    )  # fmt: skip
    return csv_response(context_of(request).engine, user, "measures", header, data)


register_router(router)
