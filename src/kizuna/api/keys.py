"""/v1/api-keys: create, list and revoke API keys (admin keys only).

The key itself is returned once, at creation; only its SHA-256 hash is
stored (see :mod:`kizuna.api.auth`). Creations and revocations go to the
audit log (``dashboard_audit``) under ``api-key:<prefix of the admin key>``. The same operations exist on the
command line as ``kizuna api-key create|revoke``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api import auth
from kizuna.api.deps import CtxDep, KeyDep, allow, read, run
from kizuna.api.pagination import CursorArg, Limit, Page, after_id, page_response
from kizuna.services.customers import jsonable
from kizuna.services.uow import UnitOfWork
from kizuna.services.users import record_audit

router = APIRouter(tags=["api keys"], dependencies=[allow("keys")])
Prefix = Annotated[
    str,
    Path(
        min_length=8,
        max_length=8,
        pattern="^[0-9a-f]{8}$",
        description="The 8 hex characters after `kz_` in the key.",
    ),
]


class KeyIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"scope": "pos", "name": "Shibuya store till 3"}]}
    )
    scope: Literal["admin", "marketer", "analyst", "pos"] = Field(
        description="admin: everything; marketer: read and act, no keys or ingestion; "
        "analyst: read-only with personal data masked; pos: quote, earn, redeem, refund."
    )
    name: str = Field("", max_length=200, description="A label, e.g. the shop or till.")


class KeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prefix": "1a2b3c4d",
                    "scope": "pos",
                    "name": "Shibuya store till 3",
                    "created_at": "2026-11-26T01:00:00+00:00",
                    "revoked_at": None,
                }
            ]
        }
    )
    prefix: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "kz_1a2b3c4d_9sQm...",
                    "prefix": "1a2b3c4d",
                    "scope": "pos",
                    "name": "Shibuya store till 3",
                    "created_at": "2026-11-26T01:00:00+00:00",
                    "revoked_at": None,
                }
            ]
        }
    )
    key: str = Field(description="The key; shown only now, store it safely.")


def _out(info: auth.KeyInfo) -> dict[str, Any]:
    return dict(
        jsonable(
            {
                "prefix": info.prefix,
                "scope": info.scope,
                "name": info.name,
                "created_at": info.created_at,
                "revoked_at": info.revoked_at,
            }
        )
    )


@router.post("/api-keys", status_code=201, response_model=NewKeyOut, summary="Create an API key")
def create(body: KeyIn, ctx: CtxDep, admin: KeyDep) -> JSONResponse:
    def handler(uow: UnitOfWork) -> dict[str, Any]:
        key = auth.create_key(uow, body.scope, body.name)
        info = auth.get_key(uow, key.split("_")[1])
        uow.commit()
        return {"key": key, **_out(info)}

    created = run(ctx, handler)
    record_audit(
        ctx.engine,
        f"api-key:{admin.prefix}",
        "api_key_create",
        {"prefix": created["prefix"], "scope": body.scope, "name": body.name},
    )
    return JSONResponse(created, status_code=201)


@router.get("/api-keys", response_model=Page[KeyOut], summary="API keys, oldest first")
def list_keys(
    request: Request,
    ctx: CtxDep,
    limit: Limit = 50,
    cursor: CursorArg = None,
    revoked: Annotated[bool, Query(description="Include revoked keys.")] = True,
) -> JSONResponse:
    after = after_id(ctx, "api-keys", cursor)
    rows = read(
        ctx, lambda uow: auth.list_keys(uow, after=after, limit=limit + 1, include_revoked=revoked)
    )
    return page_response(request, ctx, "api-keys", rows, limit, key=lambda k: k.id, item=_out)


@router.get("/api-keys/{prefix}", response_model=KeyOut, summary="One API key (never its secret)")
def get(prefix: Prefix, ctx: CtxDep) -> JSONResponse:
    return JSONResponse(_out(read(ctx, lambda uow: auth.get_key(uow, prefix))))


@router.delete(
    "/api-keys/{prefix}",
    response_model=KeyOut,
    summary="Revoke a key (every API process refuses it within 30 seconds)",
)
def revoke(prefix: Prefix, ctx: CtxDep, admin: KeyDep) -> JSONResponse:
    def handler(uow: UnitOfWork) -> dict[str, Any]:
        auth.get_key(uow, prefix)
        auth.revoke_key(uow, prefix)
        info = auth.get_key(uow, prefix)
        uow.commit()
        return _out(info)

    revoked = run(ctx, handler)
    record_audit(ctx.engine, f"api-key:{admin.prefix}", "api_key_revoke", {"prefix": prefix})
    return JSONResponse(revoked)
