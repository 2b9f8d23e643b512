"""Advocacy pages: ambassadors (candidates, pipeline, impact), referrals with fraud
reasons, community events with attendance and metrics, and the review moderation queue.

The numbers are the ones ``kizuna ambassador``, ``kizuna referral``,
``kizuna community`` and ``kizuna review`` print (the same service
functions); every table has a CSV export. Analysts see names, e-mails and
contact details inside review texts masked, on the page and in the export.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kizuna.errors import KizunaError
from kizuna.services import ambassadors, community, referrals, reviews
from kizuna.services.users import User
from kizuna.store import tables as t
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.render import render, translator

router = APIRouter()
FONT = {"family": "system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif"}
CANDIDATES = 30
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\- ()]{7,}\d")


def mask_text(text: str | None, visible: bool) -> str | None:
    """Free text as its reader may see it: e-mail addresses and phone numbers blanked."""
    if visible or not text:
        return text
    return _PHONE.sub("***", _EMAIL.sub("***@***", text))


def _names(request: Request, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    if not ids:
        return {}
    c = t.customers.c
    import sqlalchemy as sa

    with context_of(request).engine.connect() as conn:
        rows = conn.execute(sa.select(c.id, c.external_id, c.name).where(c.id.in_(ids))).all()
    return {int(r.id): (str(r.external_id), r.name) for r in rows}


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 60, "r": 20, "t": 10, "b": 60},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        **extra,
    }


# --- ambassadors ----------------------------------------------------------------


def _candidates(request: Request, user: User, limit: int) -> list[dict[str, Any]]:
    found = ambassadors.ranked_candidates(context_of(request), datetime.now(UTC), limit)
    names = _names(request, [c.customer_id for c in found])
    visible = user.sees_personal_data
    return [
        {
            "customer_id": c.customer_id,
            "member_id": c.member_id,
            "name": masked("name", names.get(c.customer_id, ("", None))[1], visible),
            "score": c.score,
            "promoter": c.promoter,
            "nps": c.nps,
            "reviews": c.reviews + c.ugc,
            "referrals": c.referrals,
            "attended": c.attended,
            "clv": c.clv,
        }
        for c in found
    ]


def _pipeline(request: Request, user: User) -> list[dict[str, Any]]:
    with context_of(request).engine.connect() as conn:
        rows = ambassadors.pipeline(conn)
    for r in rows:
        r["name"] = masked("name", r["name"], user.sees_personal_data)
    return rows


@router.get("/advocacy/ambassadors")
def ambassadors_page(request: Request, user: AnyUser) -> Response:
    tr = translator(request)
    rows = _pipeline(request, user)
    counts = Counter(r["status"] for r in rows)
    order = ("invited", "accepted", "active", "alumni", "declined")
    chart = {
        "data": [
            {
                "type": "bar",
                "x": [tr(f"advocacy.status.{s}") for s in order],
                "y": [counts.get(s, 0) for s in order],
                "marker": {"color": "#7b1fa2"},
                "hovertemplate": "%{x}: %{y:,d}<extra></extra>",
            }
        ],
        "layout": _layout(),
    }
    return render(
        request,
        "advocacy/ambassadors.html",
        candidates=_candidates(request, user, CANDIDATES),
        rows=rows,
        chart=chart,
        masked_note=not user.sees_personal_data,
    )


@router.get("/advocacy/ambassadors.csv")
def ambassadors_csv(request: Request, user: AnyUser) -> Response:
    rows = _pipeline(request, user)
    header = ("member_id", "name", "status", "score", "invited_at", "accepted_at",
              "activated_at", "alumni_at", "referred", "rewarded", "revenue", "reach",
              "tasks_done", "points")  # fmt: skip
    out = ([r.get(h) for h in header] for r in rows)
    return csv_response(context_of(request).engine, user, "ambassadors", header, out)


@router.get("/advocacy/ambassadors/candidates.csv")
def candidates_csv(request: Request, user: AnyUser) -> Response:
    rows = _candidates(request, user, 10_000)
    header = ("member_id", "name", "score", "promoter", "nps", "reviews", "referrals",
              "attended", "clv")  # fmt: skip
    out = (
        [round(r[h], 4) if h == "score" else r[h] for h in header]  # type: ignore[call-overload]
        for r in rows
    )
    return csv_response(context_of(request).engine, user, "ambassador_candidates", header, out)


# --- referrals ------------------------------------------------------------------


#: Referrals the page lists, newest first: rendering a thousand rows (with a
#: translated status and reasons each) cost most of the page's time; the
#: CSV carries up to CSV_ROWS.
PAGE_ROWS = 100
CSV_ROWS = 1000


def _referrals(request: Request, status: str | None, limit: int = CSV_ROWS) -> list[dict[str, Any]]:
    with context_of(request).engine.connect() as conn:
        return referrals.list_referrals(conn, status=status, limit=limit)


def _status_param(request: Request, allowed: tuple[str, ...]) -> str | None:
    wanted = request.query_params.get("status", "")
    return wanted if wanted in allowed else None


@router.get("/advocacy/referrals")
def referrals_page(request: Request, user: AnyUser) -> Response:
    from kizuna.domain.referrals import STATUSES

    status = _status_param(request, STATUSES)
    rows = _referrals(request, status, PAGE_ROWS)
    with context_of(request).engine.connect() as conn:
        counts, reasons = referrals.summary(conn)
    total = counts.get(status, 0) if status else sum(counts.values())
    return render(
        request,
        "advocacy/referrals.html",
        rows=rows,
        counts=counts,
        reasons=reasons,
        statuses=STATUSES,
        status=status,
        total=total,
        csv_rows=CSV_ROWS,
    )


@router.get("/advocacy/referrals.csv")
def referrals_csv(request: Request, user: AnyUser) -> Response:
    from kizuna.domain.referrals import STATUSES

    rows = _referrals(request, _status_param(request, STATUSES))
    header = ("referral_id", "referrer_id", "referee_id", "code", "status", "reasons", "source",
              "referred_at", "due_at", "settled_at", "referrer_points", "referee_points")  # fmt: skip
    out = ([";".join(r[h]) if h == "reasons" else r[h] for h in header] for r in rows)
    return csv_response(context_of(request).engine, user, "referrals", header, out)


# --- community ------------------------------------------------------------------


@router.get("/advocacy/events")
def events_page(request: Request, user: AnyUser) -> Response:
    tr = translator(request)
    with context_of(request).engine.connect() as conn:
        rows = community.events(conn)
        metrics = community.metrics(conn, datetime.now(UTC))
    shown = list(reversed(rows[:20]))
    chart = {
        "data": [
            {
                "type": "bar",
                "name": tr("advocacy.registered"),
                "x": [r["name"] for r in shown],
                "y": [r["registered"] for r in shown],
                "marker": {"color": "#90caf9"},
            },
            {
                "type": "bar",
                "name": tr("advocacy.attended"),
                "x": [r["name"] for r in shown],
                "y": [r["attended"] for r in shown],
                "marker": {"color": "#c2185b"},
            },
        ],
        "layout": _layout(barmode="group"),
    }
    return render(request, "advocacy/events.html", rows=rows, metrics=metrics, chart=chart)


@router.get("/advocacy/events.csv")
def events_csv(request: Request, user: AnyUser) -> Response:
    with context_of(request).engine.connect() as conn:
        rows = community.events(conn, limit=100_000)
    header = ("event_id", "name", "kind", "starts_at", "online", "location", "url", "capacity",
              "group_id", "registered", "attended")  # fmt: skip
    out = ([r[h] for h in header] for r in rows)
    return csv_response(context_of(request).engine, user, "community_events", header, out)


def _registrations(request: Request, user: User, event_id: str) -> list[dict[str, Any]]:
    with context_of(request).engine.connect() as conn:
        rows = community.registrations(conn, event_id)
    visible = user.sees_personal_data
    for r in rows:
        r["name"] = masked("name", r["name"], visible)
        r["email"] = masked("email", r["email"], visible)
    return rows


@router.get("/advocacy/events/{event_id}")
def event_page(request: Request, user: AnyUser, event_id: str) -> Response:
    try:
        with context_of(request).engine.connect() as conn:
            ev = community.event(conn, event_id)
    except KizunaError:
        return render(
            request,
            "error.html",
            404,
            title_key="advocacy.no_event",
            message_key="advocacy.no_event",
        )
    return render(
        request,
        "advocacy/event.html",
        event=ev,
        rows=_registrations(request, user, event_id),
        masked_note=not user.sees_personal_data,
    )


@router.get("/advocacy/events/{event_id}/registrations.csv")
def registrations_csv(request: Request, user: AnyUser, event_id: str) -> Response:
    rows = _registrations(request, user, event_id)
    header = ("member_id", "name", "email", "registered_at", "checked_in_at", "brought_by")
    out = ([r[h] for h in header] for r in rows)
    detail = {"event": event_id}
    return csv_response(
        context_of(request).engine, user, "community_registrations", header, out, detail
    )


# --- reviews --------------------------------------------------------------------


def _reviews(request: Request, user: User, status: str | None) -> list[dict[str, Any]]:
    with context_of(request).engine.connect() as conn:
        rows = reviews.queue(conn, status, limit=1000)
    visible = user.sees_personal_data
    for r in rows:
        r["name"] = masked("name", r["name"], visible)
        r["body"] = mask_text(r["body"], visible)
        r["title"] = mask_text(r["title"], visible)
    return rows


@router.get("/advocacy/reviews")
def reviews_page(request: Request, user: AnyUser) -> Response:
    wanted = request.query_params.get("status", "pending")
    status = None if wanted == "all" else _status_param(request, reviews.STATUSES) or "pending"
    return render(
        request,
        "advocacy/reviews.html",
        rows=_reviews(request, user, status),
        status=status or "all",
        statuses=(*reviews.STATUSES, "all"),
        can_moderate=user.role in ("admin", "marketer"),
        error=request.query_params.get("error"),
        masked_note=not user.sees_personal_data,
    )


@router.post("/advocacy/reviews/{review_id}")
async def moderate_review(request: Request, user: Editor, review_id: str) -> Response:
    form = await request.form()
    decision = str(form.get("decision", ""))
    reason = str(form.get("reason", "")) or None
    back = str(form.get("back", "pending"))
    if back not in (*reviews.STATUSES, "all"):
        back = "pending"
    ctx = context_of(request)
    from kizuna.services.uow import UnitOfWork

    try:
        reviews.moderate(
            UnitOfWork(ctx.engine, ctx.settings),
            reviews.Moderate(review_id, decision, user.username, reason),
        )
    except KizunaError:
        return RedirectResponse(f"/advocacy/reviews?status={back}&error=1", status_code=303)
    return RedirectResponse(f"/advocacy/reviews?status={back}", status_code=303)


@router.get("/advocacy/reviews.csv")
def reviews_csv(request: Request, user: AnyUser) -> Response:
    wanted = request.query_params.get("status", "all")
    status = wanted if wanted in reviews.STATUSES else None
    rows = _reviews(request, user, status)
    header = ("review_id", "member_id", "name", "kind", "rating", "title", "body", "channel",
              "url", "posted_at", "status", "reason", "decided_by", "points")  # fmt: skip
    out = ([r[h] for h in header] for r in rows)
    return csv_response(context_of(request).engine, user, "reviews", header, out)


# --- the public referral link ------------------------------------------------------


@router.get("/r/{code}")
def referral_landing(request: Request, code: str) -> Response:
    """The page a referral link opens (no login): the code to use, in the visitor's language."""
    from kizuna.domain.referrals import normalise_code
    from kizuna.domain.vocabulary import LANGUAGES
    from kizuna.web.i18n import Translator
    from kizuna.web.render import SECURITY_HEADERS, environment, language_of

    wanted = request.query_params.get("lang")
    lang = str(wanted) if wanted in LANGUAGES else language_of(request)
    found = normalise_code(code)[:16]
    with context_of(request).engine.connect() as conn:
        known = referrals.code_exists(conn, found)
    html = (
        environment()
        .get_template("advocacy/referral_public.html")
        .render(t=Translator(lang), lang=lang, code=found if known else None)
    )
    return HTMLResponse(html, status_code=200 if known else 404, headers=SECURITY_HEADERS)


register_router(router)
register(NavItem("advocacy", "/advocacy/ambassadors", "advocacy.nav", ALL_ROLES, 65))
