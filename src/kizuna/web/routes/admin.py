"""Administration: dashboard users and the audit log (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from kizuna.services.users import User, audit_log, list_users
from kizuna.web.auth import context_of, require
from kizuna.web.render import render

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]


@router.get("/admin")
def admin_page(request: Request, user: Admin) -> Response:
    ctx = context_of(request)
    return render(
        request,
        "admin.html",
        users=list_users(ctx.engine),
        audit=audit_log(ctx.engine, 200),
    )
