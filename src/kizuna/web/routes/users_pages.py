"""User management for admins: create users, change roles, disable, reset passwords.

Every change goes through :mod:`kizuna.services.users` (which refuses to
leave the workspace without an enabled admin) and is written to the audit
log, never with a password. Roles and the disabled flag are read on every
request, so a change applies to the user's very next page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.errors import KizunaError
from kizuna.services.users import (
    ChangeUser,
    CreateUser,
    User,
    handle_change,
    handle_create,
    list_users,
    record_audit,
)
from kizuna.store.web_tables import ROLES
from kizuna.web.auth import context_of, require
from kizuna.web.export import csv_response
from kizuna.web.nav import NavItem, register, register_router
from kizuna.web.pages_common import refused, uow_of
from kizuna.web.render import render

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]


@router.get("/users")
def users_page(request: Request, user: Admin, saved: str | None = None) -> Response:
    return render(
        request,
        "pages/users.html",
        users=list_users(context_of(request).engine),
        roles=ROLES,
        saved=saved,
    )


@router.get("/users.csv")
def users_csv(request: Request, user: Admin) -> Response:
    found = list_users(context_of(request).engine)
    header = ("username", "role", "disabled", "created_at", "last_login_at")
    rows = (
        (u.username, u.role, u.disabled, u.created_at.isoformat(),
         u.last_login_at.isoformat() if u.last_login_at else None)
        for u in found
    )  # fmt: skip
    return csv_response(context_of(request).engine, user, "dashboard_users", header, rows)


@router.post("/users")
async def create_user(request: Request, user: Admin) -> Response:
    form = await request.form()
    cmd = CreateUser(
        str(form.get("username", "")).strip(),
        str(form.get("role", "")),
        str(form.get("password", "")),
    )
    try:
        made = handle_create(cmd, uow_of(request))
    except KizunaError as exc:
        return refused(request, "pages.user_refused", str(exc), "/users")
    record_audit(
        context_of(request).engine,
        user.username,
        "user_create",
        {"user": made.username, "role": made.role},
    )
    return RedirectResponse("/users?saved=created", status_code=303)


@router.post("/users/{user_id}")
async def change_user(request: Request, user: Admin, user_id: int) -> Response:
    """Change the role and/or the disabled flag (``role``, ``disabled`` = 1 / 0)."""
    form = await request.form()
    role = str(form.get("role", "")) or None
    flag = form.get("disabled")
    disabled = None if flag is None else str(flag) == "1"
    try:
        changed = handle_change(ChangeUser(user_id, role=role, disabled=disabled), uow_of(request))
    except KizunaError as exc:
        return refused(request, "pages.user_refused", str(exc), "/users")
    record_audit(
        context_of(request).engine,
        user.username,
        "user_change",
        {"user": changed.username, "role": changed.role, "disabled": changed.disabled},
    )
    return RedirectResponse("/users?saved=changed", status_code=303)


@router.post("/users/{user_id}/password")
async def reset_password(request: Request, user: Admin, user_id: int) -> Response:
    form = await request.form()
    password = str(form.get("password", ""))
    try:
        changed = handle_change(ChangeUser(user_id, password=password), uow_of(request))
    except KizunaError as exc:
        return refused(request, "pages.user_refused", str(exc), "/users")
    record_audit(
        context_of(request).engine, user.username, "user_password", {"user": changed.username}
    )
    return RedirectResponse("/users?saved=password", status_code=303)


register_router(router)
register(NavItem("users", "/users", "pages.nav_users", ("admin",), 99))
