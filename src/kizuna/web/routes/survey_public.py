"""The public survey page: ``/survey/<token>``, answered without logging in.

The page needs no user: the signed token *is* the authorisation, and it
names one customer and one answer. It speaks the customer's language
(``?lang=`` overrides it), fits a phone screen and loads nothing from
elsewhere. The form posts back to the same URL with the session's CSRF token
(the dashboard router checks every POST), so another site can neither
submit for a visitor nor, without the token, for anybody. Edited, forged or
expired links get a page that says so, with a 4xx status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kizuna.domain.surveys import SCALE_ENDS, TokenInvalid
from kizuna.domain.vocabulary import LANGUAGES, SURVEY_SCALES
from kizuna.errors import NotFound, ValidationError
from kizuna.services.survey_links import (
    SURVEY_PATH,
    LinkExpired,
    LinkView,
    open_link,
    submit_answer,
    token_language,
)
from kizuna.services.uow import UnitOfWork
from kizuna.web.auth import context_of, csrf_token
from kizuna.web.i18n import Translator
from kizuna.web.nav import register_router
from kizuna.web.render import SECURITY_HEADERS, environment, language_of

router = APIRouter()


def _now() -> datetime:
    return datetime.now(UTC)


def _language(request: Request, token: str) -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES:
        return str(wanted)
    ctx = context_of(request)
    found = token_language(ctx.engine, ctx.settings, token)
    return found or language_of(request)


def _page(request: Request, template: str, lang: str, status: int, **context: Any) -> HTMLResponse:
    t = Translator(lang)
    html = (
        environment()
        .get_template(f"voice/{template}")
        .render(request=request, t=t, lang=lang, csrf_token=csrf_token(request), **context)
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _refused(request: Request, lang: str, exc: Exception) -> HTMLResponse:
    if isinstance(exc, LinkExpired):
        return _page(request, "survey_closed.html", lang, 410, reason="expired")
    if isinstance(exc, TokenInvalid | NotFound):
        return _page(request, "survey_closed.html", lang, 400, reason="invalid")
    raise exc


def _form(
    request: Request, view: LinkView, lang: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    low, high = SURVEY_SCALES[view.definition.kind]
    return _page(
        request,
        "survey_public.html",
        lang,
        status,
        view=view,
        definition=view.definition,
        scale=list(range(low, high + 1)),
        ends=SCALE_ENDS[view.definition.kind][lang],
        action=request.url.path + (f"?lang={lang}" if request.query_params.get("lang") else ""),
        **extra,
    )


@router.get(SURVEY_PATH + "/{token}", response_class=HTMLResponse)
def survey_page(request: Request, token: str) -> HTMLResponse:
    lang = _language(request, token)
    ctx = context_of(request)
    try:
        view = open_link(ctx.engine, ctx.settings, token, _now())
    except (TokenInvalid, LinkExpired, NotFound) as exc:
        return _refused(request, lang, exc)
    return _form(request, view, lang)


@router.post(SURVEY_PATH + "/{token}", response_class=HTMLResponse)
async def survey_answer(request: Request, token: str) -> HTMLResponse:
    lang = _language(request, token)
    ctx = context_of(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        view = open_link(ctx.engine, ctx.settings, token, _now())
    except (TokenInvalid, LinkExpired, NotFound) as exc:
        return _refused(request, lang, exc)
    try:
        result = submit_answer(
            UnitOfWork(ctx.engine, ctx.settings),
            token,
            form.get("score", ""),
            form.get("comment"),
            form,
            _now(),
        )
    except (TokenInvalid, LinkExpired, NotFound) as exc:
        return _refused(request, lang, exc)
    except ValidationError:
        return _form(request, view, lang, 422, error=True, submitted=form)
    return _page(request, "survey_thanks.html", lang, 200, edited=result.edited, token=token)


register_router(router)
