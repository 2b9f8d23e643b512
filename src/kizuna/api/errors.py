"""Every error as ``application/problem+json`` (RFC 9457), with a message that says what to fix.

The one place where Kizuna errors become HTTP statuses. Nothing reaches the
client as a stack trace: an unexpected failure is logged here with its trace
and answered with a 500 problem that carries no internals.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kizuna import errors

log = logging.getLogger("kizuna.api")
PROBLEM = "application/problem+json"

#: (status, problem type) for each error class; the first match in MRO order wins.
STATUSES: dict[type[errors.KizunaError], tuple[int, str]] = {
    errors.InsufficientPoints: (422, "insufficient-points"),
    errors.MoneyError: (422, "bad-amount"),
    errors.ValidationError: (422, "invalid-request"),
    errors.NotFound: (404, "not-found"),
    errors.Conflict: (409, "conflict"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.ConfigError: (503, "misconfigured"),
    errors.WorkspaceError: (503, "workspace-unavailable"),
}


def problem(status: int, kind: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://kizuna.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: errors.KizunaError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return 400, "bad-request"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.KizunaError)
    async def _kizuna(_: Request, exc: errors.KizunaError) -> JSONResponse:
        status, kind = status_of(exc)
        return problem(status, kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append({"field": where, "problem": e.get("msg", "invalid")})
        detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return problem(422, "invalid-request", f"fix these fields: {detail}", errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = (
            str(exc.detail) if exc.status_code != 404 else "no such endpoint; see /docs for the API"
        )
        return problem(exc.status_code, "http-error", detail)

    @app.exception_handler(sa.exc.OperationalError)
    async def _db(_: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
        return problem(
            503,
            "database-unavailable",
            "the database is unavailable; retry with the same Idempotency-Key",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(
            500,
            "internal-error",
            "an unexpected error occurred; it was logged. Retry with the same Idempotency-Key.",
        )
