"""Customers: search with cursor paging, the customer 360, and their CSV exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kizuna.domain.money import from_minor
from kizuna.errors import NotFound
from kizuna.services.customer_list import CustomerRow, iter_customers, search_customers
from kizuna.services.customers import TIMELINE_KINDS, customer_360, customer_pk
from kizuna.services.users import User
from kizuna.web.auth import AnyUser, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.panels import PanelContext, load_panels, panel
from kizuna.web.render import render, translator
from kizuna.web.routes import customer_panels  # noqa: F401  (registers the built-in panels)
from kizuna.web.timeline_text import describe

router = APIRouter()
PAGE_SIZE = 50
TIMELINE_PAGE = 50


def search_fields(user: User) -> tuple[str, ...]:
    """Who may not see personal data may not search by it either (no probing e-mails)."""
    return ("id", "name", "email") if user.sees_personal_data else ("id",)


def shown(row: CustomerRow, user: User) -> dict[str, Any]:
    visible = user.sees_personal_data
    return {
        "customer_id": row.customer_id,
        "name": masked("name", row.name, visible),
        "email": masked("email", row.email, visible),
        "phone": masked("phone", row.phone, visible),
        "region": row.region,
        "signup_at": row.signup_at,
        "orders": row.orders,
        "revenue": row.revenue,
    }


@router.get("/customers")
def customers(
    request: Request,
    user: AnyUser,
    q: str = "",
    after: str | None = None,
) -> Response:
    ctx = context_of(request)
    page = search_customers(
        ctx.engine, q, after=after or None, limit=PAGE_SIZE, fields=search_fields(user)
    )
    return render(
        request,
        "customers.html",
        q=q,
        after=after,
        rows=[shown(r, user) for r in page.rows],
        next_after=page.next_after,
        id_only=not user.sees_personal_data,
    )


@router.get("/customers.csv")
def customers_csv(request: Request, user: AnyUser, q: str = "") -> Response:
    ctx = context_of(request)
    exponent = ctx.settings.currency_exponent

    def rows() -> Iterator[tuple[Any, ...]]:
        for row in iter_customers(ctx.engine, q, fields=search_fields(user)):
            s = shown(row, user)
            yield (
                s["customer_id"],
                s["name"],
                s["email"],
                s["phone"],
                s["region"],
                s["signup_at"].isoformat() if s["signup_at"] else None,
                s["orders"],
                from_minor(s["revenue"], exponent),
            )

    header = (
        "customer_id",
        "name",
        "email",
        "phone",
        "region",
        "signup_at",
        "orders",
        f"revenue_{ctx.settings.currency}",
    )
    return csv_response(
        ctx.engine, user, "customers", header, rows(), {"filtered": bool(q.strip())}
    )


def _before(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _kinds(kind: str | None) -> list[str] | None:
    return [kind] if kind in TIMELINE_KINDS else None


@router.get("/customers/{customer_id}")
def customer(
    request: Request,
    user: AnyUser,
    customer_id: str,
    before: str | None = None,
    kind: str | None = None,
) -> Response:
    ctx = context_of(request)
    try:
        view = customer_360(
            ctx.engine,
            ctx.settings,
            customer_id,
            limit=TIMELINE_PAGE,
            before=_before(before),
            kinds=_kinds(kind),
        )
    except NotFound:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.customer_not_found",
        )
    p = view.profile
    visible = user.sees_personal_data
    with ctx.engine.connect() as conn:
        pk = customer_pk(conn, customer_id)
    pc = PanelContext(ctx, user, pk, customer_id, translator(request))
    shown_panels = load_panels(pc)
    personal = {
        f: masked(f, getattr(p, f), visible)
        for f in ("name", "email", "phone", "birthday", "postal_code")
    }
    return render(
        request,
        "customer.html",
        view=view,
        profile=p,
        personal=personal,
        stats=p.stats,
        kinds=TIMELINE_KINDS,
        describe=describe,
        kind=kind if kind in TIMELINE_KINDS else "",
        before=before,
        next_before=view.next_before.isoformat() if view.next_before else None,
        panels=shown_panels,
        pc=pc,
    )


@router.get("/customers/{customer_id}/panels/{key}.csv")
def panel_csv(request: Request, user: AnyUser, customer_id: str, key: str) -> Response:
    """One 360 panel's table in full (see :mod:`kizuna.web.panels`)."""
    ctx = context_of(request)
    found = panel(key)
    try:
        with ctx.engine.connect() as conn:
            pk = customer_pk(conn, customer_id)
    except NotFound:
        found = None
    if found is None or found.export is None or user.role not in found.roles:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.page_not_found",
        )
    header, rows = found.export(PanelContext(ctx, user, pk, customer_id, translator(request)))
    return csv_response(
        ctx.engine, user, f"customer_{key}", header, rows, {"customer_id": customer_id}
    )


@router.get("/customers/{customer_id}/timeline.csv")
def timeline_csv(
    request: Request,
    user: AnyUser,
    customer_id: str,
    kind: str | None = None,
) -> Response:
    """The customer's whole timeline (or one kind of it), newest first."""
    ctx = context_of(request)
    try:
        first = customer_360(ctx.engine, ctx.settings, customer_id, limit=1000, kinds=_kinds(kind))
    except NotFound:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.customer_not_found",
        )

    def rows() -> Iterator[tuple[Any, ...]]:
        view = first
        while True:
            for item in view.timeline:
                yield (item.local_at.isoformat(), item.kind, item.title)
            if view.next_before is None:
                return
            view = customer_360(
                ctx.engine,
                ctx.settings,
                customer_id,
                limit=1000,
                before=view.next_before,
                kinds=_kinds(kind),
            )

    return csv_response(
        ctx.engine,
        user,
        "timeline",
        ("local_time", "kind", "title"),
        rows(),
        {"customer_id": customer_id},
    )
