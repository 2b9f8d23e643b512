"""Logging in and out, and the ja/en switch."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.services.users import authenticate, record_audit
from kizuna.web.auth import context_of, log_in, log_out
from kizuna.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from kizuna.web.render import render
from kizuna.web.throttle import LoginThrottle

router = APIRouter()
log = logging.getLogger(__name__)


def safe_next(target: str | None) -> str:
    """A local path to go to after a redirect; anything else (another site) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=safe_next(next), error=False)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    ctx = context_of(request)
    name = username.strip()
    throttle: LoginThrottle = request.app.state.kizuna_login_throttle
    if throttle.blocked(name):
        log.warning("dashboard login locked after repeated failures")
        return render(
            request,
            "login.html",
            429,
            next=safe_next(next),
            error=True,
            locked=True,
            username=username,
        )
    user = authenticate(ctx.engine, name, password)
    if user is None:
        throttle.failed(name)
        log.info("dashboard login refused for a user name of %d characters", len(username))
        return render(
            request, "login.html", 401, next=safe_next(next), error=True, username=username
        )
    throttle.succeeded(name)
    log_in(request, user)
    record_audit(ctx.engine, user.username, "login", {"role": user.role})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{language}")
def switch_language(language: str, next: str = "/") -> Response:
    """Remember the reader's language for a year and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="lax", httponly=True
        )
    return response
