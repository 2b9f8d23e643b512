"""The real-time HTTP API (``/v1``) for shops, POS and back-office tools.

:func:`create_app` builds the app around one :class:`~kizuna.bootstrap.Context`;
``kizuna serve`` runs it with uvicorn. The OpenAPI document is at
``/openapi.json`` and the interactive docs at ``/docs``.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI

from kizuna.bootstrap import Context, open_context


def create_app(ctx: Context) -> FastAPI:
    from kizuna.api import errors

    app = FastAPI(
        title="Kizuna loyalty API",
        version="1",
        description="Earn, redeem and refund points in real time. Every mutating call takes an "
        "`Idempotency-Key` header; a retry with the same key returns the first result.",
    )
    app.state.ctx = ctx
    errors.install(app)
    _add_operations(app)
    for router in _routers():
        app.include_router(router, prefix="/v1")
    from kizuna.web.unsubscribe_page import router as unsubscribe_router

    app.include_router(unsubscribe_router)  # public: every email's unsubscribe link
    return app


def _add_operations(app: FastAPI) -> None:
    """/healthz, /readyz, /metrics and the request-id/latency middleware (docs/operations.md).

    Their three routes go ahead of ``/v1``: a load balancer probes
    ``/healthz`` several times a second, and behind the API's ~100 routes
    its match cost more than its answer; three regular expressions more on
    a ``/v1`` call cost microseconds.
    """
    from kizuna.observability import health
    from kizuna.observability.middleware import RequestContext

    app.include_router(health.router)
    app.add_middleware(RequestContext)


#: Modules whose routes a till calls on every sale (the order, the
#: redemption, the member's balance and tier shown before both). Routing
#: tries routes in order with a regular expression each, so these go first:
#: ~60 routes of other modules ahead of ``/v1/orders`` cost a POS call
#: ~0.2 ms. No path of theirs is matched by another module's route (checked
#: in ``tests/api/test_orders_api.py``).
HOT_MODULES = ("orders", "redemptions", "members")


def _routers() -> list[APIRouter]:
    """The ``router`` of every module in ``kizuna.api``: :data:`HOT_MODULES`
    first, then in module-name order.

    Feature areas add a resource by adding a module with a ``router``; nothing
    else has to change (and two areas never edit the same file to do it).
    """
    import importlib
    import pkgutil

    import kizuna.api as package

    def order(info: pkgutil.ModuleInfo) -> tuple[int, str]:
        hot = info.name in HOT_MODULES
        return (HOT_MODULES.index(info.name) if hot else len(HOT_MODULES), info.name)

    found: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=order):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory kizuna.api:app_from_env`` (one per worker process).

    ``kizuna serve`` sets ``KIZUNA_SERVE_DASHBOARD`` (mount the dashboard at
    ``/``) and ``KIZUNA_SERVE_WORKER`` (run the journey worker in a thread of
    this process — the embedded default needs no second process).
    """
    from kizuna.observability.logs import configure_logging

    ctx = open_context(os.environ.get("KIZUNA_WORKSPACE"))
    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    app = create_app(ctx)
    if os.environ.get("KIZUNA_SERVE_DASHBOARD", "1") == "1":
        from kizuna.web import mount

        mount(app, ctx)
    if os.environ.get("KIZUNA_SERVE_WORKER") == "1":
        _run_worker_in_background(app, ctx)
    _tune_gc()
    return app


#: Allocations between young-generation collections (CPython's default: 700).
GC_THRESHOLDS = (20_000, 50, 100)


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a serving process.

    After start-up the process holds ~180,000 long-lived objects (FastAPI,
    SQLAlchemy, pydantic, the dashboard) that every full collection walked
    again; :func:`gc.freeze` sets them aside for good. With CPython's default
    thresholds, parsing one 100,000-line batch ran ~15 full collections:
    1.3 s of its CPU, 0.3 s with these settings (``bench/ledger_bench.py``).
    Reference counting still frees almost everything at once; only cyclic
    garbage waits a little longer.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _run_worker_in_background(app: FastAPI, ctx: Context) -> None:
    """Start the journey worker with the app and stop it cleanly with the app."""
    import threading

    from kizuna.automation.worker import run_worker

    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(ctx,),
        kwargs={"stop_event": stop, "poll_seconds": 2.0},
        name="kizuna-worker",
        daemon=True,
    )

    @app.on_event("startup")
    def _start() -> None:
        thread.start()

    @app.on_event("shutdown")
    def _stop() -> None:
        stop.set()
        thread.join(timeout=30)
