"""The programme pages: tiers, earning rules with the simulator, rewards, coupons, liability.

Everything is read through the programme's service layer
(:mod:`kizuna.services.programme`), so the page says what ``kizuna program
show``/``simulate`` and the API say. Admins and marketers may change the
configuration (the programme document, validated and versioned by
:func:`~kizuna.services.programme.config.apply_programme`), add rewards and
generate coupon batches; analysts read only. Every change is audited.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import tomli_w
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.domain.programme import Programme, parse_programme
from kizuna.errors import KizunaError
from kizuna.services.programme import config
from kizuna.services.programme.coupons import generate
from kizuna.services.programme.liability import liability
from kizuna.services.programme.orders import OrderLine, RecordOrder, quote
from kizuna.services.programme.rewards import NewReward, catalogue, create_reward
from kizuna.services.programme_overview import coupon_batches
from kizuna.services.users import record_audit
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.pages_common import as_int, layout, refused, uow_of
from kizuna.web.render import render

router = APIRouter()
#: Order lines the simulator form offers.
SIM_LINES = 4


def _active(request: Request) -> config.ActiveProgramme:
    with uow_of(request) as uow:
        active = config.active_programme(uow)
        uow.commit()  # the first use records the default programme as version 1
    return active


def _tiers(programme: Programme) -> list[dict[str, Any]]:
    return [
        {
            "name": tier.name,
            "threshold": tier.threshold,
            "multiplier": tier.multiplier,
            "benefits": list(tier.benefits),
        }
        for tier in programme.tiers
    ]


def _simulate(request: Request) -> tuple[dict[str, Any] | None, str | None, list[dict[str, str]]]:
    """The simulator's result for the query string (``amount1``, ``category1``...)."""
    params = request.query_params
    form = [
        {
            "amount": params.get(f"amount{i}", ""),
            "category": params.get(f"category{i}", ""),
            "product": params.get(f"product{i}", ""),
        }
        for i in range(1, SIM_LINES + 1)
    ]
    if "simulate" not in params:
        return None, None, form
    lines = []
    for i, line in enumerate(form, start=1):
        if not line["amount"].strip():
            continue
        amount = as_int(line["amount"])
        if amount is None:
            return None, f"line {i}: the amount must be a whole number of yen, e.g. 1980", form
        lines.append(OrderLine(i, amount, 1, line["product"] or None, line["category"] or None))
    try:
        with uow_of(request) as uow:
            result = quote(
                uow, RecordOrder("simulation", params.get("member", "").strip(), tuple(lines))
            )
    except KizunaError as exc:
        return None, str(exc), form
    return result, None, form


@router.get("/programme")
def programme_page(request: Request, user: AnyUser) -> Response:
    active = _active(request)
    programme = active.programme
    sim, sim_error, sim_form = _simulate(request)
    with uow_of(request) as uow:
        rewards = catalogue(uow)
        batches = coupon_batches(uow.conn)
        owed = liability(uow)
    chart = {
        "data": [
            {
                "type": "bar",
                "x": [m["month"] for m in owed["expiring_by_month"]],
                "y": [m["points"] for m in owed["expiring_by_month"]],
                "marker": {"color": "#c2185b"},
                "hovertemplate": "%{x}: %{y:,d}<extra></extra>",
            }
        ],
        "layout": layout(height=280, xaxis={"type": "category"}),
    }
    return render(
        request,
        "pages/programme.html",
        active=active,
        p=programme,
        tiers=_tiers(programme),
        sim=sim,
        sim_error=sim_error,
        sim_form=sim_form,
        member=request.query_params.get("member", ""),
        rewards=rewards,
        batches=batches,
        owed=owed,
        owed_value=Decimal(owed["value"]),
        chart=chart,
        editor=user.sees_personal_data,
        saved=request.query_params.get("saved"),
    )


def _toml(programme: Programme) -> str:
    return tomli_w.dumps(dict(programme.raw))


@router.get("/programme/edit")
def edit_page(request: Request, user: Editor) -> Response:
    active = _active(request)
    return render(request, "pages/programme_edit.html", active=active, text=_toml(active.programme))


@router.post("/programme/edit")
async def edit_save(request: Request, user: Editor) -> Response:
    """Validate the document and make it the active programme (a new version)."""
    form = await request.form()
    text = str(form.get("document", ""))
    active = _active(request)
    try:
        programme = parse_programme(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        error = f"not valid TOML: {exc}"
    except KizunaError as exc:
        error = str(exc)
    else:
        with uow_of(request) as uow:
            version = config.apply_programme(uow, programme, f"dashboard:{user.username}")
            uow.commit()
        record_audit(
            context_of(request).engine, user.username, "programme_apply", {"version": version}
        )
        return RedirectResponse("/programme?saved=programme", status_code=303)
    return render(request, "pages/programme_edit.html", 422, active=active, text=text, error=error)


@router.post("/programme/rewards")
async def add_reward(request: Request, user: Editor) -> Response:
    form = await request.form()
    cost = as_int(str(form.get("points_cost", "")))
    cmd = NewReward(
        reward_id=str(form.get("reward_id", "")).strip(),
        name=str(form.get("name", "")).strip(),
        points_cost=cost if cost is not None else 0,
        stock=as_int(str(form.get("stock", ""))),
        per_member_limit=as_int(str(form.get("per_member_limit", ""))),
    )
    try:
        if not cmd.name:
            raise KizunaError("a reward needs a name")
        with uow_of(request) as uow:
            create_reward(uow, cmd)
    except KizunaError as exc:
        return refused(request, "pages.reward_refused", str(exc), "/programme#rewards")
    record_audit(
        context_of(request).engine, user.username, "reward_create", {"reward": cmd.reward_id}
    )
    return RedirectResponse("/programme?saved=reward#rewards", status_code=303)


@router.post("/programme/coupons")
async def add_coupons(request: Request, user: Editor) -> Response:
    """Generate a batch of single-use codes; the codes are shown once, on this page."""
    form = await request.form()
    days = as_int(str(form.get("valid_days", "")))
    try:
        count = as_int(str(form.get("count", ""))) or 0
        batch = str(form.get("batch", "")).strip()
        if not batch:
            raise KizunaError("a coupon batch needs a name")
        with uow_of(request) as uow:
            codes = generate(
                uow,
                count=count,
                kind=str(form.get("kind", "fixed")),
                value=as_int(str(form.get("value", ""))) or 0,
                batch=batch,
                min_spend=as_int(str(form.get("min_spend", ""))) or 0,
                valid_until=datetime.now(UTC) + timedelta(days=days) if days else None,
            )
            uow.commit()
    except KizunaError as exc:
        return refused(request, "pages.coupons_refused", str(exc), "/programme#coupons")
    record_audit(
        context_of(request).engine,
        user.username,
        "coupons_generate",
        {"batch": batch, "count": len(codes)},
    )
    return render(request, "pages/coupons_made.html", batch=batch, codes=codes)


# --- CSV exports --------------------------------------------------------------------


@router.get("/programme/tiers.csv")
def tiers_csv(request: Request, user: AnyUser) -> Response:
    programme = _active(request).programme
    rows = (
        (t["name"], t["threshold"], str(t["multiplier"]), "; ".join(t["benefits"]))
        for t in _tiers(programme)
    )
    header = ("tier", f"threshold_{programme.tier_basis}", "multiplier", "benefits")
    return csv_response(context_of(request).engine, user, "programme_tiers", header, rows)


@router.get("/programme/rewards.csv")
def rewards_csv(request: Request, user: AnyUser) -> Response:
    with uow_of(request) as uow:
        found = catalogue(uow)
    header = (
        "reward_id",
        "name",
        "points_cost",
        "stock",
        "per_member_limit",
        "valid_from",
        "valid_until",
    )
    rows = (tuple(r[h] for h in header) for r in found)
    return csv_response(context_of(request).engine, user, "rewards", header, rows)


@router.get("/programme/coupons.csv")
def coupons_csv(request: Request, user: AnyUser) -> Response:
    with uow_of(request) as uow:
        found = coupon_batches(uow.conn)
    header = ("batch", "kind", "value", "min_spend", "codes", "used_codes", "uses", "bound",
              "valid_from", "valid_until")  # fmt: skip
    rows = (
        tuple(r[h].isoformat() if isinstance(r[h], datetime) else r[h] for h in header)
        for r in found
    )
    return csv_response(context_of(request).engine, user, "coupon_batches", header, rows)


@router.get("/programme/liability.csv")
def liability_csv(request: Request, user: AnyUser) -> Response:
    with uow_of(request) as uow:
        owed = liability(uow)
    header = ("month", "points", "value", "expected_breakage")
    rows = (
        (m["month"], m["points"], m["value"], m["expected_breakage"])
        for m in owed["expiring_by_month"]
    )
    return csv_response(context_of(request).engine, user, "points_liability", header, rows)


register_router(router)
register(NavItem("programme", "/programme", "pages.nav_programme", ALL_ROLES, 40))
