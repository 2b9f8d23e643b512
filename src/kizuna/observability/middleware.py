"""The request middleware: request id in and out, one log line and one histogram sample per request.

Plain ASGI rather than ``BaseHTTPMiddleware``: it adds no task or buffer per
request, which matters on the POS path that must answer in milliseconds. For
the same reason the histogram's labelled child is looked up once per
(route, method, status) and the access line's fields are built only when
INFO is logged (servers under load usually log at WARNING).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kizuna.observability.context import request_id
from kizuna.observability.metrics import REQUEST_SECONDS

log = logging.getLogger("kizuna.http")
HEADER = "x-request-id"
#: A caller's id is kept only if it looks like an id (no log injection, bounded size).
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


#: The histogram child of each (route template, method, status) seen; bounded
#: by the app's routes (templates, never raw paths) times methods and statuses.
_samples: dict[tuple[str, str, int], Any] = {}


def _sample(route: str, method: str, status: int) -> Any:
    """The histogram child for these labels (``labels()`` takes a lock and builds a key)."""
    child = _samples.get((route, method, status))
    if child is None:
        child = _samples[(route, method, status)] = REQUEST_SECONDS.labels(
            route, method, str(status)
        )
    return child


def _route_template(scope: Scope) -> str:
    """The matched route's template (``/v1/members/{member_id}``), never the raw path.

    FastAPI keeps an included router's routes as declared (``scope["route"]``
    is ``/members/{member_id}``, without the ``/v1`` prefix it was included
    under) and records the route as served, prefix included, in its part of
    the scope; that one is used when present.
    """
    served: Any = scope.get("fastapi", {}).get("effective_route_context")
    route: Any = scope.get("route")
    path = getattr(served, "path", None) or getattr(route, "path", None)
    if not path:
        return "unmatched"
    return str(scope.get("root_path", "")) + str(path)


class RequestContext:
    """Set ``X-Request-ID`` (the caller's, or a new one), time the request, log it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if _VALID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            _sample(route, scope["method"], status).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                _log_access(scope["method"], route, status, elapsed)
            request_id.reset(token)


def _log_access(method: str, route: str, status: int, elapsed: float) -> None:
    """One access line, with its fields for the JSON log format."""
    log.info(
        "%s %s %d %.1f ms",
        method,
        route,
        status,
        elapsed * 1000,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )
