"""``/healthz``, ``/readyz`` and ``/metrics`` for load balancers, orchestrators and Prometheus.

* ``/healthz`` — the process answers (liveness: restart it if not);
* ``/readyz`` — the database answers and its schema is the one this code
  needs (readiness: send traffic only when 200); 503 problem+json otherwise;
* ``/metrics`` — Prometheus text, behind an **admin-scoped API key**
  (``Authorization: Bearer kz_...``; Prometheus' ``authorization`` scrape
  setting sends it). Queue sizes and send counts describe the business, so
  they are not left open to anyone who can reach the port.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from kizuna.api import auth
from kizuna.api.deps import caller, context
from kizuna.api.errors import problem
from kizuna.errors import Forbidden
from kizuna.store import schema

router = APIRouter(include_in_schema=False)


_ALIVE = b'{"status":"ok"}'


@router.get("/healthz")
async def healthz() -> Response:
    """On the event loop, not in a worker thread: it does no I/O, so the hop
    would cost more than the answer, and a probe that the loop answers is the
    honest liveness signal (a blocked loop fails it)."""
    return Response(_ALIVE, media_type="application/json")


@router.get("/readyz")
def readyz(request: Request) -> Response:
    ctx = context(request)
    try:
        current = schema.current_revision(ctx.engine)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1]
        return problem(
            503, "not-ready", f"database unreachable: {reason[0] if reason else 'error'}"
        )
    head = schema.head_revision()
    if current != head:
        return problem(
            503,
            "not-ready",
            f"database schema at {current}, this Kizuna needs {head}; run `kizuna db upgrade`",
        )
    return JSONResponse({"status": "ready", "schema_revision": current})


@router.get("/metrics")
def metrics(request: Request, key: Annotated[auth.ApiKey, Depends(caller)]) -> Response:
    if key.scope != "admin":
        raise Forbidden("metrics need an admin API key (kizuna api-key create --scope admin)")
    from kizuna.observability.metrics import exposition

    return Response(exposition(context(request).engine), media_type=CONTENT_TYPE_LATEST)
