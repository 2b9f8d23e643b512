"""The dashboard as a FastAPI sub-application that can live inside the API app.

:func:`mount` adds the dashboard's routes (``/``, ``/customers``, ``/data``,
``/login``...), its static files (``/static/...``), the session middleware
and the handlers of its own exceptions to an existing FastAPI app;
:func:`create_dashboard_app` makes an app with the dashboard alone.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from kizuna.bootstrap import Context
from kizuna.web.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    CSRFFailed,
    LoginRequired,
    RoleRequired,
    csrf_protect,
    secret_key,
)
from kizuna.web.nav import ROUTERS
from kizuna.web.render import render
from kizuna.web.routes import admin, customers, data, overview, session
from kizuna.web.routes.figures import figures_page
from kizuna.web.session_scope import DashboardSession
from kizuna.web.throttle import LoginThrottle

STATIC = Path(__file__).parent / "static"


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed ``plotly`` package (no CDN)."""
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def _import_feature_pages() -> None:
    """Import every module of ``kizuna.web.routes``: feature pages register themselves."""
    import importlib
    import pkgutil

    import kizuna.web.routes as routes

    for info in pkgutil.iter_modules(routes.__path__):
        importlib.import_module(f"{routes.__name__}.{info.name}")


def dashboard_router() -> APIRouter:
    """Every dashboard route; each POST is CSRF-checked by the router's dependency.

    Every request is also marked a dashboard page (``figures_page``): stale
    data-following figures are then served at once and recomputed in the
    background, and the page says how old they are.
    """
    _import_feature_pages()
    router = APIRouter(
        dependencies=[Depends(csrf_protect), Depends(figures_page)], include_in_schema=False
    )
    for module in (session, overview, customers, data, admin):
        router.include_router(module.router)
    for extra in ROUTERS:
        router.include_router(extra)
    return router


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _role_required(request: Request, _exc: Exception) -> Response:
    return render(
        request, "error.html", 403, title_key="error.forbidden_title", message_key="error.forbidden"
    )


async def _csrf_failed(request: Request, _exc: Exception) -> Response:
    return render(
        request, "error.html", 403, title_key="error.csrf_title", message_key="error.csrf"
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 404:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.page_not_found",
        )
    return await http_exception_handler(request, exc)  # type: ignore[arg-type]


def mount(app: FastAPI, ctx: Context) -> None:
    """Add the dashboard (pages at ``/``, assets at ``/static``) to ``app``.

    Call it once, before the app starts. It adds Starlette's session
    middleware (signed with :func:`kizuna.web.auth.secret_key`) to ``app``,
    for dashboard paths only (:mod:`kizuna.web.session_scope`).
    """
    app.state.kizuna_dashboard_ctx = ctx
    app.state.kizuna_login_throttle = LoginThrottle()
    app.add_middleware(
        DashboardSession,
        secret_key=secret_key(ctx),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=False,
    )
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(RoleRequired, _role_required)
    app.add_exception_handler(CSRFFailed, _csrf_failed)

    js = plotly_js()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            js, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="kizuna-static")
    app.include_router(dashboard_router())


def create_dashboard_app(ctx: Context) -> FastAPI:
    """A FastAPI app serving the dashboard alone (tests, ``kizuna dashboard``)."""
    ctx.require_current_schema()
    app = FastAPI(title="Kizuna dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    mount(app, ctx)
    # Only the stand-alone app answers unknown paths with a page: inside the
    # API app, /v1/... must keep its problem+json 404.
    app.add_exception_handler(StarletteHTTPException, _not_found)
    return app
