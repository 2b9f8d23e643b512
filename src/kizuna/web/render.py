"""Rendering pages: the Jinja2 environment and what every template receives."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kizuna.services.figure_refresh import page_figures
from kizuna.web.auth import context_of, csrf_token
from kizuna.web.format import Formatter
from kizuna.web.i18n import LANGUAGE_COOKIE, LANGUAGES, Translator, choose_language
from kizuna.web.nav import items_for

TEMPLATES = Path(__file__).parent / "templates"

#: Sent with every dashboard page: nothing may load from another origin, and
#: no other site may frame the dashboard. Plotly injects <style> elements,
#: hence the inline-style allowance; scripts are only our own files.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["query"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v})
    return env


def language_of(request: Request) -> str:
    return choose_language(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


def translator(request: Request) -> Translator:
    return Translator(language_of(request))


def formatter(request: Request, t: Translator | None = None) -> Formatter:
    settings = context_of(request).settings
    locale = (t or translator(request)).locale
    return Formatter(locale, settings.currency, settings.currency_exponent, settings.timezone)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` with the user, language, formatter, nav and CSRF token."""
    t = translator(request)
    user = getattr(request.state, "kizuna_user", None)
    figures = page_figures()
    page = (
        environment()
        .get_template(template)
        .render(
            request=request,
            t=t,
            lang=t.language,
            languages=LANGUAGES,
            fmt=formatter(request, t),
            user=user,
            nav=items_for(user.role) if user is not None else [],
            csrf_token=csrf_token(request),
            current_path=request.url.path,
            current_url=str(request.url.path)
            + (f"?{request.url.query}" if request.url.query else ""),
            # "as of" of the oldest data-following figure shown, and whether a
            # newer one is being computed (kizuna.services.run_artefacts).
            figures_as_of=figures[0].as_of if figures else None,
            figures_stale=any(f.stale for f in figures),
            figures_updating=any(f.updating for f in figures),
            **context,
        )
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)
