"""Loyalty analytics pages: KPIs, the loyalty matrix, RFM, cohorts and lifecycle.

Every page reads through :mod:`kizuna.services.analytics_queries` or the
latest scoring run (stored once per run or per state of the data by
:mod:`kizuna.services.dashboard_figures`), so it shows the same numbers as ``kizuna kpi``,
``kizuna matrix``, ``kizuna rfm``, ``kizuna cohorts`` and ``kizuna lifecycle``;
every table has a CSV export. Importing this module registers its router and
navigation entries (:mod:`kizuna.web.nav`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.analytics import lifecycle as lifecycle_mod
from kizuna.analytics import loyalty as loyalty_mod
from kizuna.analytics.rfm import SEGMENTS_BY_KEY
from kizuna.domain.money import from_minor
from kizuna.errors import NotFound
from kizuna.services import dashboard_figures as figures
from kizuna.services.scoring import RunInfo, latest_run, score
from kizuna.services.users import User
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.render import render, translator

router = APIRouter()
PAGE_SIZE = 50

#: The matrix cells: (class, behaviour high?, attitude attached?).
CELLS: tuple[tuple[str, bool, bool], ...] = (
    ("latent", False, True),
    ("true", True, True),
    ("none", False, False),
    ("spurious", True, False),
)

FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}
STAGE_COLOURS = {
    "new": "#90caf9",
    "repeat": "#42a5f5",
    "loyal": "#c2185b",
    "ambassador": "#7b1fa2",
    "at_risk": "#ffa000",
    "lapsed": "#9e9e9e",
}


def _num(value: Any) -> float | None:
    """A float, or None for missing values (NaN, None)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 70, "r": 30, "t": 10, "b": 60},
        "height": 360,
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        **extra,
    }


def _run_or_none(request: Request) -> RunInfo | None:
    try:
        return latest_run(context_of(request))
    except NotFound:
        return None


def _run_or_404(request: Request) -> RunInfo:
    """The latest run for a CSV export; without one there is nothing to export (404)."""
    run = _run_or_none(request)
    if run is None:
        raise HTTPException(status_code=404, detail="no scoring run yet; run `kizuna score`")
    return run


def _no_run(request: Request, title_key: str) -> Response:
    """The page of an analysis that needs a scoring run when there is none yet."""
    return render(request, "analytics_norun.html", title_key=title_key)


# --- KPIs ----------------------------------------------------------------------


@dataclass(frozen=True)
class MonthKpi:
    month: str
    nps_responses: float | None
    nps: float | None
    margin_of_error: float | None
    csat: float | None
    repeat_rate: float | None
    retention_rate: float | None
    churn_rate: float | None


KPI_COLUMNS = (
    "nps_responses",
    "nps",
    "margin_of_error",
    "csat",
    "repeat_rate",
    "retention_rate",
    "churn_rate",
)


def monthly_kpis(request: Request) -> list[MonthKpi]:
    """The monthly KPI frame of ``analytics_queries.kpi_frame``, oldest first."""
    frame = figures.monthly_kpis(context_of(request))
    out = []
    for rec in frame.to_dict("records"):
        out.append(
            MonthKpi(str(rec["month"]), *(_num(rec.get(c)) for c in KPI_COLUMNS))  # type: ignore[arg-type]
        )
    return out


def nps_chart(months: list[MonthKpi], label: str, band: str) -> dict[str, Any]:
    """NPS by month as a line inside its 95% margin of error (a shaded band)."""
    rows = [m for m in months if m.nps is not None]
    x = [m.month for m in rows]
    upper = [min(100.0, m.nps + (m.margin_of_error or 0.0)) for m in rows if m.nps is not None]
    lower = [max(-100.0, m.nps - (m.margin_of_error or 0.0)) for m in rows if m.nps is not None]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": upper,
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": band,
                "x": x,
                "y": lower,
                "fill": "tonexty",
                "fillcolor": "rgba(194,24,91,0.15)",
                "line": {"width": 0},
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": x,
                "y": [m.nps for m in rows],
                "customdata": [round(m.margin_of_error or 0.0, 1) for m in rows],
                "hovertemplate": "%{x}<br>%{y:.1f} ± %{customdata}<extra></extra>",
                "line": {"color": "#c2185b", "width": 2},
            },
        ],
        "layout": _layout(yaxis={"title": {"text": label}, "range": [-100, 100]}),
    }


@router.get("/analytics/kpis")
def kpis_page(request: Request, user: AnyUser) -> Response:
    run = _run_or_none(request)
    if run is None:
        return _no_run(request, title_key="analytics.title_kpis")
    tr = translator(request)
    months = monthly_kpis(request)
    last = next((m for m in reversed(months) if m.retention_rate is not None), None)
    return render(
        request,
        "analytics_kpis.html",
        run=run,
        k=run.kpis,
        nps=run.kpis.get("nps") or {},
        repeat=run.kpis.get("repeat") or {},
        last=last,
        months=list(reversed(months)),
        chart=nps_chart(months, tr("analytics.nps"), tr("analytics.margin_band")),
    )


@router.get("/analytics/kpis.csv")
def kpis_csv(request: Request, user: AnyUser) -> Response:
    months = monthly_kpis(request)
    rows = ((m.month, *(getattr(m, c) for c in KPI_COLUMNS)) for m in months)
    return csv_response(
        context_of(request).engine, user, "kpis_by_month", ("month", *KPI_COLUMNS), rows
    )


@router.post("/analytics/score")
def run_scoring(request: Request, user: Editor) -> Response:
    """Score now (small workspaces: seconds), then show the KPIs."""
    score(context_of(request))
    return RedirectResponse("/analytics/kpis", status_code=303)


# --- The loyalty matrix ----------------------------------------------------------


def matrix_counts(request: Request, run: RunInfo) -> dict[str, tuple[int, int]]:
    """(customers, revenue in minor units) per loyalty class of ``run`` (stored with the run)."""
    return figures.matrix_counts(context_of(request), run)


def _label(labels: dict[str, dict[str, str]], key: str, lang: str) -> str:
    return labels.get(key, {}).get(lang, key)


@router.get("/analytics/matrix")
def matrix_page(request: Request, user: AnyUser) -> Response:
    run = _run_or_none(request)
    if run is None:
        return _no_run(request, title_key="analytics.title_matrix")
    lang = translator(request).language
    counts = matrix_counts(request, run)
    total = sum(n for n, _ in counts.values()) or 1
    revenue = sum(r for _, r in counts.values()) or 1
    classes = [
        {
            "key": c,
            "label": _label(loyalty_mod.LABELS, c, lang),
            "customers": counts[c][0],
            "revenue": counts[c][1],
            "share": counts[c][0] / total,
            "revenue_share": counts[c][1] / revenue,
        }
        for c in loyalty_mod.CLASSES
    ]
    by_key = {c["key"]: c for c in classes}
    return render(
        request,
        "analytics_matrix.html",
        run=run,
        classes=classes,
        cells=[(by_key[c], high, attached) for c, high, attached in CELLS],
        unknown=by_key["attitude_unknown"],
    )


@router.get("/analytics/matrix.csv")
def matrix_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    run = _run_or_404(request)
    counts = matrix_counts(request, run)
    exp = ctx.settings.currency_exponent
    rows = (
        (c, loyalty_mod.LABELS[c]["en"], loyalty_mod.LABELS[c]["ja"], n, from_minor(r, exp))
        for c, (n, r) in counts.items()
    )
    header = ("loyalty", "en", "ja", "customers", f"revenue_{ctx.settings.currency}")
    return csv_response(ctx.engine, user, "loyalty_matrix", header, rows, {"run": run.version})


def _cell_query(run: RunInfo, cell: str) -> sa.Select[Any]:
    s, c = customer_scores, t.customers
    return (
        sa.select(
            c.c.external_id,
            c.c.name,
            c.c.email,
            s.c.total_amount,
            s.c.clv,
            s.c.behaviour_score,
            s.c.attitude_score,
            s.c.rfm_segment,
            s.c.lifecycle,
        )
        .select_from(s.join(c, c.c.id == s.c.customer_id))
        .where(s.c.run_id == run.id, s.c.loyalty == cell)
        .order_by(c.c.external_id)
    )


def _cell_page(
    conn: sa.Connection, run: RunInfo, cell: str, after: str | None, limit: int
) -> list[Any]:
    """One page of a class's customers in external-id order, walked on indexes.

    Joining the run's scores first made the database read every score of the
    run and sort the class (seconds at a million customers). Instead the
    customers are walked in the order of their unique ``external_id`` index
    from the cursor, each checked by a primary-key lookup of its score, until
    the page is full (about ``limit / share of the class`` lookups); then the
    page's rows are read by primary key.
    """
    s, c = customer_scores.c, t.customers.c
    in_cell = (
        sa.select(s.loyalty).where(s.run_id == run.id, s.customer_id == c.id).scalar_subquery()
        == cell
    )
    ids = sa.select(c.id).where(in_cell)
    if after:
        ids = ids.where(c.external_id > after)
    found = list(conn.execute(ids.order_by(c.external_id).limit(limit)).scalars())
    if not found:
        return []
    return list(conn.execute(_cell_query(run, cell).where(c.id.in_(found))).all())


def _cell_row(row: Any, user: User, lang: str) -> dict[str, Any]:
    visible = user.sees_personal_data
    segment = SEGMENTS_BY_KEY.get(row.rfm_segment)
    return {
        "customer_id": row.external_id,
        "name": masked("name", row.name, visible),
        "email": masked("email", row.email, visible),
        "total_amount": row.total_amount,
        "clv": _num(row.clv),
        "behaviour": _num(row.behaviour_score),
        "attitude": _num(row.attitude_score),
        "segment": getattr(segment, lang, row.rfm_segment) if segment else row.rfm_segment,
        "lifecycle": _label(lifecycle_mod.LABELS, row.lifecycle, lang),
    }


def _known_cell(cell: str) -> str:
    if cell not in loyalty_mod.CLASSES:
        raise HTTPException(status_code=404, detail=f"unknown loyalty class {cell!r}")
    return cell


@router.get("/analytics/matrix/customers")
def matrix_customers(
    request: Request, user: AnyUser, cell: str = "true", after: str | None = None
) -> Response:
    if cell not in loyalty_mod.CLASSES:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.page_not_found",
        )
    run = _run_or_none(request)
    if run is None:
        return _no_run(request, title_key="analytics.title_matrix")
    lang = translator(request).language
    with context_of(request).engine.connect() as conn:
        rows = _cell_page(conn, run, cell, after, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render(
        request,
        "analytics_cell.html",
        run=run,
        cell=cell,
        cell_label=_label(loyalty_mod.LABELS, cell, lang),
        rows=[_cell_row(r, user, lang) for r in rows],
        after=after,
        next_after=rows[-1].external_id if more and rows else None,
        masked_note=not user.sees_personal_data,
    )


@router.get("/analytics/matrix/customers.csv")
def matrix_customers_csv(request: Request, user: AnyUser, cell: str = "true") -> Response:
    ctx = context_of(request)
    run = _run_or_404(request)
    query = _cell_query(run, _known_cell(cell))
    exp = ctx.settings.currency_exponent
    with ctx.engine.connect() as conn:
        found = [_cell_row(r, user, "en") for r in conn.execute(query).all()]
    rows = (
        (
            r["customer_id"],
            r["name"],
            r["email"],
            from_minor(r["total_amount"], exp),
            r["clv"],
            r["behaviour"],
            r["attitude"],
            r["segment"],
            r["lifecycle"],
        )
        for r in found
    )
    header = (
        "customer_id",
        "name",
        "email",
        f"total_{ctx.settings.currency}",
        "clv",
        "behaviour",
        "attitude",
        "rfm_segment",
        "lifecycle",
    )
    return csv_response(
        ctx.engine, user, "loyalty_cell", header, rows, {"run": run.version, "cell": cell}
    )


# --- RFM -------------------------------------------------------------------------


@router.get("/analytics/rfm")
def rfm_page(request: Request, user: AnyUser) -> Response:
    run = _run_or_none(request)
    if run is None:
        return _no_run(request, title_key="analytics.title_rfm")
    lang = translator(request).language
    table = figures.segment_table(context_of(request), run)
    total = sum(r["customers"] for r in table) or 1
    rows = [
        {
            **r,
            "label": getattr(SEGMENTS_BY_KEY[r["segment"]], lang),
            "share": r["customers"] / total,
        }
        for r in table
    ]
    chart = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [r["label"] for r in reversed(rows)],
                "x": [r["customers"] for r in reversed(rows)],
                "marker": {"color": "#c2185b"},
                "hovertemplate": "%{y}: %{x:,d}<extra></extra>",
            }
        ],
        "layout": _layout(margin={"l": 140, "r": 30, "t": 10, "b": 40}),
    }
    return render(request, "analytics_rfm.html", run=run, rows=rows, chart=chart)


@router.get("/analytics/rfm.csv")
def rfm_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    run = _run_or_404(request)
    exp = ctx.settings.currency_exponent
    rows = (
        (
            r["segment"],
            SEGMENTS_BY_KEY[r["segment"]].en,
            SEGMENTS_BY_KEY[r["segment"]].ja,
            r["customers"],
            round(float(from_minor(round(r["mean_spend"]), exp)), 2),
            round(float(from_minor(round(r["mean_clv"]), exp)), 2),
            round(r["mean_p_alive"], 4),
        )
        for r in figures.segment_table(ctx, run)
    )
    header = ("segment", "en", "ja", "customers", "mean_spend", "mean_clv", "mean_p_alive")
    return csv_response(ctx.engine, user, "rfm_segments", header, rows, {"run": run.version})


# --- Cohorts ---------------------------------------------------------------------

#: Months since the first purchase shown on the page (the CSV has them all).
COHORT_AGES = 12


def _month_index(label: str) -> int:
    year, month = label.split("-")
    return int(year) * 12 + int(month) - 1


def _cohorts(request: Request) -> Any:
    """The cohort matrix; a month with no buyers that the data covers is 0, not blank."""
    try:
        frame = figures.cohorts(context_of(request))
    except (NotFound, KeyError, ValueError):
        return None
    if not len(frame):
        return None
    # Vectorised: cell by cell (``frame.at``) this took tens of milliseconds
    # on three years of monthly cohorts.
    ages = [a for a in frame.columns if a != "customers"]
    values = frame[ages].to_numpy(dtype=float, na_value=np.nan, copy=True)
    known = ~np.isnan(values)
    if not known.any():
        return frame
    cohort = np.array([_month_index(str(c)) for c in frame.index])[:, None]
    age = np.array([int(a) for a in ages])[None, :]
    last = int((cohort + age)[known].max())
    values[~known & (age <= last - cohort)] = 0.0
    frame[ages] = values
    return frame


@router.get("/analytics/cohorts")
def cohorts_page(request: Request, user: AnyUser) -> Response:
    frame = _cohorts(request)
    if frame is None:
        return render(request, "analytics_cohorts.html", rows=[], ages=[], chart=None)
    tr = translator(request)
    ages = [a for a in frame.columns if a != "customers"]
    shown_ages = ages[: COHORT_AGES + 1]
    rows = [
        {
            "cohort": str(idx),
            "customers": int(rec["customers"]),
            "shares": [_num(rec[a]) for a in shown_ages],
        }
        for idx, rec in frame.iterrows()
    ]
    z = [[None if v is None else round(v * 100, 1) for v in (_num(rec[a]) for a in ages)]
         for _, rec in frame.iterrows()]  # fmt: skip
    chart = {
        "data": [
            {
                "type": "heatmap",
                "x": [int(a) for a in ages],
                "y": [str(i) for i in frame.index],
                "z": z,
                "colorscale": [[0, "#fff5f8"], [1, "#c2185b"]],
                "zmin": 0,
                "zmax": 100,
                "hovertemplate": "%{y} +%{x}: %{z:.1f}%<extra></extra>",
                "colorbar": {"ticksuffix": "%"},
            }
        ],
        "layout": _layout(
            height=max(360, 18 * len(frame) + 100),
            xaxis={"title": {"text": tr("analytics.months_since")}, "dtick": 1},
            yaxis={"autorange": "reversed", "type": "category"},
        ),
    }
    return render(
        request,
        "analytics_cohorts.html",
        rows=rows,
        ages=[int(a) for a in shown_ages],
        chart=chart,
    )


@router.get("/analytics/cohorts.csv")
def cohorts_csv(request: Request, user: AnyUser) -> Response:
    frame = _cohorts(request)
    ages = [a for a in frame.columns if a != "customers"] if frame is not None else []
    rows = (
        (str(idx), int(rec["customers"]), *(_num(rec[a]) for a in ages))
        for idx, rec in (frame.iterrows() if frame is not None else iter(()))
    )
    header = ("cohort", "customers", *(f"month_{int(a)}" for a in ages))
    return csv_response(context_of(request).engine, user, "cohort_retention", header, rows)


# --- Lifecycle -------------------------------------------------------------------


def _lifecycle(request: Request) -> tuple[Any, Any] | None:
    try:
        return figures.lifecycle(context_of(request))
    except NotFound:
        return None


def _translucent(colour: str, alpha: float = 0.35) -> str:
    """``#rrggbb`` as ``rgba(r,g,b,alpha)`` (the Sankey's links take their source's colour)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def lifecycle_charts(trend: Any, matrix: Any, lang: str, first: str) -> tuple[Any, Any]:
    def name(stage: str) -> str:
        return first if stage == "(first purchase)" else _label(lifecycle_mod.LABELS, stage, lang)

    lines = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name(stage),
                "x": [str(m) for m in trend.index],
                "y": [int(v) for v in trend[stage]],
                "line": {"color": STAGE_COLOURS.get(stage, "#37474f"), "width": 2},
            }
            for stage in trend.columns
        ],
        "layout": _layout(yaxis={"rangemode": "tozero", "tickformat": ",d"}),
    }
    sources = [str(s) for s in matrix.index]
    targets = [str(s) for s in matrix.columns]
    labels = [name(s) for s in sources] + [name(s) for s in targets]
    links: dict[str, list[Any]] = {"source": [], "target": [], "value": [], "color": []}
    for i, src in enumerate(sources):
        for j, dst in enumerate(targets):
            value = int(matrix.loc[src, dst])
            if value:
                links["source"].append(i)
                links["target"].append(len(sources) + j)
                links["value"].append(value)
                links["color"].append(_translucent(STAGE_COLOURS.get(src, "#37474f")))
    sankey = {
        "data": [
            {
                "type": "sankey",
                "arrangement": "snap",
                "node": {
                    "label": labels,
                    "pad": 14,
                    "color": [STAGE_COLOURS.get(s, "#37474f") for s in sources + targets],
                },
                "link": links,
            }
        ],
        "layout": _layout(height=420, margin={"l": 20, "r": 20, "t": 10, "b": 10}),
    }
    return lines, sankey


@router.get("/analytics/lifecycle")
def lifecycle_page(request: Request, user: AnyUser) -> Response:
    found = _lifecycle(request)
    if found is None:
        return render(request, "analytics_lifecycle.html", trend=None)
    trend, matrix = found
    tr = translator(request)
    lang = tr.language
    first = tr("analytics.first_purchase")

    def name(stage: str) -> str:
        return first if stage == "(first purchase)" else _label(lifecycle_mod.LABELS, stage, lang)

    lines, sankey = lifecycle_charts(trend, matrix, lang, first)
    return render(
        request,
        "analytics_lifecycle.html",
        trend=[
            (str(m), [int(v) for v in rec])
            for m, rec in zip(trend.index, trend.values, strict=True)
        ][::-1],  # fmt: skip
        stages=[name(s) for s in trend.columns],
        month=str(trend.index[-1]) if len(trend) else "",
        sources=[(name(str(s)), [int(v) for v in matrix.loc[s]]) for s in matrix.index],
        targets=[name(str(s)) for s in matrix.columns],
        lines=lines,
        sankey=sankey,
    )


@router.get("/analytics/lifecycle.csv")
def lifecycle_csv(request: Request, user: AnyUser) -> Response:
    found = _lifecycle(request)
    stages = list(found[0].columns) if found else []
    rows = (
        (str(m), *(int(v) for v in rec))
        for m, rec in (zip(found[0].index, found[0].values, strict=True) if found else ())
    )
    return csv_response(
        context_of(request).engine, user, "lifecycle_stages", ("month", *stages), rows
    )


@router.get("/analytics/lifecycle/transitions.csv")
def transitions_csv(request: Request, user: AnyUser) -> Response:
    found = _lifecycle(request)
    rows: list[tuple[Any, ...]] = []
    if found:
        matrix = found[1]
        rows = [
            (str(s), str(d), int(matrix.loc[s, d]))
            for s in matrix.index
            for d in matrix.columns
            if int(matrix.loc[s, d])
        ]
    header = ("from_stage", "to_stage", "customers")
    return csv_response(context_of(request).engine, user, "lifecycle_transitions", header, rows)


register_router(router)
register(NavItem("analytics", "/analytics/kpis", "nav.analytics", ALL_ROLES, 30))
register(NavItem("matrix", "/analytics/matrix", "nav.matrix", ALL_ROLES, 31))
register(NavItem("rfm", "/analytics/rfm", "nav.rfm", ALL_ROLES, 32))
register(NavItem("cohorts", "/analytics/cohorts", "nav.cohorts", ALL_ROLES, 33))
register(NavItem("lifecycle", "/analytics/lifecycle", "nav.lifecycle", ALL_ROLES, 34))
