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
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kizuna import errors
from kizuna.api.ratelimit import RateLimited

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


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the bad field, e.g. `lines.0.amount`.")
    problem: str


class Problem(BaseModel):
    """An RFC 9457 problem: ``detail`` says what went wrong and what to change."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://kizuna.dev/problems/invalid-request",
                    "title": "invalid request",
                    "status": 422,
                    "detail": "fix these fields: limit: Input should be less than or equal to 500",
                    "errors": [
                        {"field": "limit", "problem": "Input should be less than or equal to 500"}
                    ],
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to change, for a person.")
    errors: list[FieldProblem] | None = Field(
        None, description="Every bad field of the request, when the body or query was invalid."
    )


def problem(
    status: int,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://kizuna.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def status_of(exc: errors.KizunaError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return 400, "bad-request"


def import_problems(report: object) -> list[dict[str, Any]]:
    """Every bad row of a refused import, with its line and reason, as JSON."""
    found = getattr(report, "problems", [])
    return [
        {
            "file": p.file.rsplit("/", 1)[-1],
            "line": p.line,
            "unit": p.unit,
            "column": p.column,
            "reason": p.reason,
            "value": p.value,
        }
        for p in found
    ]


def install(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(errors.KizunaError)
    async def _kizuna(_: Request, exc: errors.KizunaError) -> JSONResponse:
        if isinstance(exc, RateLimited):
            return problem(
                429,
                "rate-limited",
                str(exc),
                headers={"Retry-After": str(exc.retry_after)},
                retry_after=exc.retry_after,
                limit_per_minute=exc.limit,
            )
        if isinstance(exc, errors.ImportRejected):
            return problem(422, "import-rejected", str(exc), problems=import_problems(exc.report))
        status, kind = status_of(exc)
        return problem(status, kind, str(exc))

    @app.exception_handler(OverflowError)
    @app.exception_handler(sa.exc.DataError)
    async def _data(_: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL refuses such a value with DataError; SQLite's driver
        # cannot even send an integer past 64 bits (OverflowError).
        log.info("value refused by the database: %s", getattr(exc, "orig", exc))
        return problem(
            422,
            "invalid-request",
            "a value is out of the range the database can store (numbers must fit in "
            "64 bits, text must be valid UTF-8 without NUL characters); send a smaller value",
        )

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


def _document_problems(app: FastAPI) -> None:
    """Make the published OpenAPI say what errors really look like.

    FastAPI documents a 422 with its own ``HTTPValidationError`` body, but
    every error here is answered as ``application/problem+json``; a client
    generated from the schema (or schemathesis checking the responses) must
    see that shape. Operations that take a key also document 401, 403 and
    429, and operations with a path parameter 404.
    """
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        defs = components["Problem"].pop("$defs", {})
        components.update(defs)
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                if op.get("security"):
                    responses.setdefault("401", {"description": "Missing or unknown API key"})
                    responses.setdefault("403", {"description": "The key's scope may not do this"})
                    responses.setdefault(
                        "429",
                        {
                            "description": "Rate limit reached; see the Retry-After header",
                            "headers": {
                                "Retry-After": {
                                    "description": "Seconds to wait before retrying",
                                    "schema": {"type": "integer"},
                                }
                            },
                        },
                    )
                if "{" in path:
                    responses.setdefault("404", {"description": "Not found"})
                if op.get("parameters") or op.get("requestBody"):
                    responses.setdefault("422", {"description": "Invalid request"})
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = content
                        if status == "422" and response.get("description") == "Validation Error":
                            response["description"] = "Invalid request"
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
