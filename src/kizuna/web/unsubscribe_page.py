"""``/unsubscribe``: where the link in every marketing email lands.

Two requests, as RFC 8058 asks:

* ``GET /unsubscribe?token=…`` shows a page with one button. It changes
  nothing, because mail scanners and link previewers fetch every link;
* ``POST /unsubscribe?token=…`` withdraws the consent — from that button,
  or straight from the mail client's one-click unsubscribe (body
  ``List-Unsubscribe=One-Click``), which has no session and no cookie.

The signed token is the authorisation: it names one customer and channel
and cannot be forged without the workspace secret, so a forged cross-site
POST could only unsubscribe the person whose link it already holds. That is
why this route sits on the API app, always served and outside the
dashboard's login and CSRF check. The page speaks the customer's language.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kizuna.automation.unsubscribe import handle_unsubscribe, make_token, read_token, topic_of
from kizuna.bootstrap import Context
from kizuna.errors import ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.web.i18n import LANGUAGES, Translator, choose_language
from kizuna.web.render import SECURITY_HEADERS, environment

router = APIRouter(include_in_schema=False)


def _context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _language(request: Request, ctx: Context, customer_id: int | None) -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES:
        return str(wanted)
    if customer_id is not None:
        with ctx.engine.connect() as conn:
            stored = conn.execute(
                sa.select(t.customers.c.language).where(t.customers.c.id == customer_id)
            ).scalar_one_or_none()
        if stored and stored[:2] in LANGUAGES:
            return str(stored[:2])
    return choose_language(None, request.headers.get("accept-language"))


def _page(
    request: Request, lang: str, state: str, token: str, status: int, ctx: Context | None = None
) -> HTMLResponse:
    """The page; a topic's link also offers to leave every marketing email."""
    topic = all_token = None
    if token and ctx is not None:
        customer, channel = read_token(ctx.settings, token)
        topic = topic_of(channel)
        if topic is not None:
            all_token = make_token(ctx.settings, customer, "email")
    html = (
        environment()
        .get_template("public/unsubscribe.html")
        .render(
            t=Translator(lang), lang=lang, state=state, token=token, topic=topic,
            all_token=all_token,
        )
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _customer(ctx: Context, token: str) -> int | None:
    try:
        return read_token(ctx.settings, token)[0]
    except ValidationError:
        return None


@router.get("/unsubscribe", response_class=HTMLResponse)
def confirm(request: Request, token: str = "") -> HTMLResponse:
    """The confirmation page; a bad link gets a page that says so (400)."""
    ctx = _context(request)
    customer = _customer(ctx, token)
    lang = _language(request, ctx, customer)
    if customer is None:
        return _page(request, lang, "invalid", "", 400)
    return _page(request, lang, "confirm", token, 200, ctx)


@router.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe(request: Request, token: str = "") -> HTMLResponse:
    """Withdraw the consent (idempotent); answers the one-click POST and the button alike."""
    ctx = _context(request)
    customer = _customer(ctx, token)
    lang = _language(request, ctx, customer)
    if customer is None:
        return _page(request, lang, "invalid", "", 400)
    handle_unsubscribe(token, UnitOfWork(ctx.engine, ctx.settings))
    done = "done_topic" if topic_of(read_token(ctx.settings, token)[1]) else "done"
    return _page(request, lang, done, "", 200)
