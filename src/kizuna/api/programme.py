"""/v1/programme: read the active rules, or replace them with a validated new version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from kizuna.api.deps import CtxDep, allow, run
from kizuna.domain.programme import parse_programme
from kizuna.services.programme import config
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["programme"])


@router.get(
    "/programme", dependencies=[allow("read")], summary="The active programme and its version"
)
def show(ctx: CtxDep) -> JSONResponse:
    def handler(uow: UnitOfWork) -> dict[str, Any]:
        active = config.active_programme(uow)
        uow.commit()
        return {"version": active.version, "document": dict(active.programme.raw)}

    return JSONResponse(run(ctx, handler))


@router.put(
    "/programme",
    dependencies=[allow("programme")],
    summary="Validate and activate a new programme version",
)
def replace(document: Annotated[dict[str, Any], Body()], ctx: CtxDep) -> JSONResponse:
    programme = parse_programme(document)

    def handler(uow: UnitOfWork) -> dict[str, Any]:
        version = config.apply_programme(uow, programme, "api")
        uow.commit()
        return {"version": version}

    return JSONResponse(run(ctx, handler))
