"""Recommendation and next-best-offer pages: quality, co-purchases, offers, one customer's picks.

Everything is read from the latest recommendation run and the offer ledger,
the same data ``kizuna recommend evaluate`` / ``fit`` and ``kizuna offers``
print; every table has a CSV export. The "recommended for this customer"
panel uses :func:`kizuna.services.recommendations.recommendations_for`, the
function the Customer 360 page can call too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from kizuna.errors import NotFound
from kizuna.services import offers, recommendations
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.panels import Panel, PanelContext, register_panel
from kizuna.web.render import render, translator

router = APIRouter()
MODELS = ("popular", "similar", "als")
FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}


def _quality_rows(run: recommendations.RunSummary | None) -> list[dict[str, Any]]:
    if run is None or "models" not in run.evaluation:
        return []
    models = run.evaluation["models"]
    base = models.get("popular", {}).get("precision") or 0.0
    return [
        {
            "model": name,
            "precision": m["precision"],
            "recall": m["recall"],
            "ndcg": m["ndcg"],
            "users": m["users"],
            "lift": (m["precision"] / base - 1.0) if base and name != "popular" else None,
            "chosen": name == run.model,
        }
        for name in MODELS
        if (m := models.get(name))
    ]


def _pairs(conn: Any, run: recommendations.RunSummary | None) -> list[dict[str, Any]]:
    if run is None:
        return []
    ids = sorted({p["a"] for p in run.pairs} | {p["b"] for p in run.pairs})
    names = recommendations.product_names(conn, ids)
    unknown = ("?", "?")
    return [
        {
            "a": names.get(p["a"], unknown)[0], "a_name": names.get(p["a"], unknown)[1],
            "b": names.get(p["b"], unknown)[0], "b_name": names.get(p["b"], unknown)[1],
            "customers": p["customers"],
        }
        for p in run.pairs
    ]  # fmt: skip


def _chart(rows: list[dict[str, Any]], label: str, names: list[str]) -> dict[str, Any] | None:
    if not rows:
        return None
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": [r["precision"] for r in rows],
                "marker": {
                    "color": ["#9e9e9e" if r["model"] == "popular" else "#c2185b" for r in rows]
                },  # fmt: skip
                "hovertemplate": "%{x}: %{y:.4f}<extra></extra>",
                "name": label,
            }
        ],
        "layout": {
            "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
            "height": 260,
            "font": FONT,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "yaxis": {"title": {"text": label}, "rangemode": "tozero"},
        },  # fmt: skip
    }


def _customer_panel(conn: Any, customer: str, user: Any) -> dict[str, Any]:
    """One customer's picks and next best offer; the name masked unless the role may see it."""
    from kizuna.store import tables as t

    cid = recommendations.customer_id_of(conn, customer)
    name = conn.execute(
        t.customers.select().with_only_columns(t.customers.c.name).where(t.customers.c.id == cid)
    ).scalar_one_or_none()
    ranked = offers.ranked_for(conn, cid)
    return {
        "id": customer,
        "name": masked("name", name, user.sees_personal_data),
        "picks": recommendations.recommendations_for(conn, cid, 10),
        "offers": ranked,
        "best": ranked[0] if ranked and ranked[0].eligible else None,
    }


@router.get("/recommend")
def recommend_page(request: Request, user: AnyUser, customer: str = "") -> Response:
    ctx = context_of(request)
    tr = translator(request)
    panel: dict[str, Any] | None = None
    error = ""
    with ctx.engine.connect() as conn:
        run = recommendations.latest_run(conn)
        pairs = _pairs(conn, run)
        offer_rows = offers.offer_table(conn)
        customer = customer.strip()[:128]
        if customer:
            try:
                panel = _customer_panel(conn, customer, user)
            except NotFound:
                error = tr("recommend.unknown_customer", customer=customer)
    quality = _quality_rows(run)
    return render(
        request, "recommend/index.html", run=run, quality=quality, pairs=pairs,
        offers=offer_rows, customer=customer,
        chart=_chart(quality, tr("recommend.precision"),
                     [tr(f"recommend.model.{r['model']}") for r in quality]),
        panel=panel, error=error,
    )  # fmt: skip


@router.get("/recommend/quality.csv")
def quality_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        run = recommendations.latest_run(conn)
    rows = (
        (r["model"], round(r["precision"], 6), round(r["recall"], 6), round(r["ndcg"], 6),
         r["users"], "" if r["lift"] is None else round(r["lift"], 4), r["chosen"])
        for r in _quality_rows(run)
    )  # fmt: skip
    header = ("model", "precision_at_10", "recall_at_10", "ndcg_at_10", "customers",
              "lift_vs_popular", "chosen")  # fmt: skip
    return csv_response(ctx.engine, user, "recommend_quality", header, rows,
                        {"run": run.id if run else None})  # fmt: skip


@router.get("/recommend/pairs.csv")
def pairs_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        run = recommendations.latest_run(conn)
        pairs = _pairs(conn, run)
    rows = ((p["a"], p["a_name"], p["b"], p["b_name"], p["customers"]) for p in pairs)
    header = ("product_a", "name_a", "product_b", "name_b", "customers_bought_both")
    return csv_response(ctx.engine, user, "recommend_pairs", header, rows)


@router.get("/recommend/offers.csv")
def offers_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        table = offers.offer_table(conn)
    header = ("code", "name", "kind", "reference", "margin", "cost", "budget", "spent",
              "max_total", "assigned", "redeemed", "active")  # fmt: skip
    rows = ([r[h] for h in header] for r in table)
    return csv_response(ctx.engine, user, "offers", header, rows)


@router.get("/recommend/customer.csv")
def customer_csv(request: Request, user: AnyUser, customer: str) -> Response:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        try:
            cid = recommendations.customer_id_of(conn, customer.strip())
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        items = recommendations.recommendations_for(conn, cid, 10)
    rows = ((customer, i.rank, i.product_id, i.name, i.price, round(i.score, 6), i.source)
            for i in items)  # fmt: skip
    header = ("customer_id", "rank", "product_id", "name", "price", "score", "source")
    return csv_response(ctx.engine, user, "recommendations", header, rows)


register_router(router)
register(NavItem("recommend", "/recommend", "recommend.nav", ALL_ROLES, 55))


def load_recommended_panel(pc: PanelContext) -> list[dict[str, object]] | None:
    """The Customer 360 panel: this customer's top products from the latest run."""
    with pc.engine.connect() as conn:
        found = recommendations.recommendations_for(conn, pc.customer_pk, 5)
    return [r.to_dict() for r in found] or None


register_panel(
    Panel(
        "recommended",
        "recommend.panel_title",
        "recommend/panel.html",
        load_recommended_panel,
        order=60,
    )
)
