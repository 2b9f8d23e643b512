"""Sessions, roles and CSRF for the dashboard.

The session is a signed cookie (Starlette's ``SessionMiddleware``) holding
only the user's id and a CSRF token; the role is read from the database on
every request, so disabling a user or changing a role takes effect at once.
Every POST must carry the session's CSRF token in the ``csrf_token`` form
field, checked in constant time by :func:`csrf_protect`, a dependency of the
whole dashboard router.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from kizuna.bootstrap import Context
from kizuna.errors import NotFound
from kizuna.services.users import User, get_user
from kizuna.web.nav import ALL_ROLES, EDITORS

SESSION_COOKIE = "kizuna_session"
#: Eight hours: a working day, after which the user logs in again.
SESSION_MAX_AGE = 8 * 3600
SECRET_FILE = ".secret_key"


class LoginRequired(Exception):
    """The page needs a logged-in user; the dashboard answers with the login page."""


class RoleRequired(Exception):
    """The user's role may not open this page or do this action (a 403 page)."""


class CSRFFailed(Exception):
    """A POST came without the session's CSRF token (a 403 page)."""


def secret_key(ctx: Context) -> str:
    """The ``secret_key`` setting, or a random key kept in ``WORKSPACE/.secret_key``.

    The file is created once with mode 0600 so sessions survive restarts; the
    key is never logged or printed.
    """
    configured = str.__str__(ctx.settings.secret_key)
    if configured:
        return configured
    path = Path(ctx.settings.workspace) / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.kizuna_dashboard_ctx
    return ctx


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_protect(request: Request) -> None:
    """Refuse any POST whose ``csrf_token`` field differs from the session's token."""
    if request.method != "POST":
        return
    expected = request.session.get("csrf")
    form = await request.form()
    sent = form.get("csrf_token")
    if (
        not isinstance(expected, str)
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise CSRFFailed()


def log_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: no session fixation)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()


def current_user(request: Request) -> User:
    """The logged-in, enabled user, or :class:`LoginRequired`."""
    cached = getattr(request.state, "kizuna_user", None)
    if isinstance(cached, User):
        return cached
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired()
    try:
        user = get_user(context_of(request).engine, uid)
    except NotFound:
        request.session.clear()
        raise LoginRequired() from None
    if user.disabled:
        request.session.clear()
        raise LoginRequired()
    request.state.kizuna_user = user
    return user


def require(*roles: str) -> Callable[[Request], User]:
    """A dependency: the current user, if their role is one of ``roles``."""

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user.role not in roles:
            raise RoleRequired()
        return user

    return dependency


#: Route parameter types: any logged-in user, or one who may change data.
AnyUser = Annotated[User, Depends(require(*ALL_ROLES))]
Editor = Annotated[User, Depends(require(*EDITORS))]
