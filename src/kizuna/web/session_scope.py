"""The dashboard's session cookie, applied to dashboard paths only.

Starlette's ``SessionMiddleware`` parses the ``Cookie`` header, verifies a
signature and wraps ``send`` on every request it sees. Mounted inside the API
app it saw every ``/v1`` call, ``/healthz`` probe and ``/metrics`` scrape too,
none of which reads a session (API callers authenticate with a key): work per
request on the path a till waits on. :class:`DashboardSession` hands those
paths straight to the app and everything else (pages, ``/login``, assets, the
public unsubscribe page) to the session middleware, unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

#: Path prefixes that never use the dashboard session. ``/v1`` is matched as
#: ``/v1/...`` or exactly ``/v1``, so a dashboard page named ``/v1x`` would
#: still get its session.
SESSIONLESS = ("/v1", "/healthz", "/readyz", "/metrics", "/openapi.json")


def sessionless(path: str) -> bool:
    """Whether ``path`` is an API or operations path (no dashboard session)."""
    for prefix in SESSIONLESS:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return True
    return False


class DashboardSession:
    """``SessionMiddleware`` for dashboard paths; API and operations paths pass straight through."""

    def __init__(self, app: ASGIApp, /, **session_options: Any) -> None:
        self.app = app
        self.with_session = SessionMiddleware(app, **session_options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and sessionless(scope["path"]):
            await self.app(scope, receive, send)
            return
        await self.with_session(scope, receive, send)
