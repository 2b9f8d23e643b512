"""Request plumbing shared by the routers: the context, the caller's key, the Idempotency-Key."""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from kizuna.api import auth, ratelimit
from kizuna.bootstrap import Context
from kizuna.services.programme.idempotency import Idem, make_idem
from kizuna.services.uow import UnitOfWork

T = TypeVar("T")

#: SQLite allows one writer: queueing writers of this process on a lock is
#: fair and immediate, where SQLite's busy handler sleeps in growing steps.
SQLITE_WRITER = threading.Lock()


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


#: Documents the scheme in OpenAPI (so clients and schemathesis know to send
#: the key); the header itself is read by :func:`caller`, which explains a
#: missing or malformed one better than the default 403.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer kz_<prefix>_<secret>` "
    "(create one with `kizuna api-key create --scope ...` or POST /v1/api-keys).",
)


async def _context(request: Request) -> Context:
    """:func:`context` as a dependency: ``async`` so FastAPI runs it on the event
    loop instead of handing it to a worker thread (a thread hop per dependency
    per request is a real share of a POS call's time)."""
    return context(request)


async def caller(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> auth.ApiKey:
    """The verified key of the request, after spending one token of its rate limit.

    A key verified in the last :data:`auth.CACHE_SECONDS` and a scope without
    a limit cost no database work, so they are checked on the event loop;
    only the database work (a cache miss, a new rate-limit lease) goes to a
    worker thread.
    """
    ctx = context(request)
    header = request.headers.get("authorization")
    key = auth.cached(header)
    if key is None:
        key = await run_in_threadpool(
            auth.verify, lambda: UnitOfWork(ctx.engine, ctx.settings), header
        )
    if ratelimit.limit_for(ctx.settings, key.scope) > 0:
        lock = SQLITE_WRITER if ctx.settings.is_sqlite else None
        await run_in_threadpool(
            ratelimit.check, ctx.engine, ctx.settings, key.prefix, key.scope, lock
        )
    return key


def allow(permission: str) -> Any:
    """A dependency that admits only keys whose scope grants ``permission``."""

    async def check(key: Annotated[auth.ApiKey, Depends(caller)]) -> auth.ApiKey:
        key.require(permission)
        return key

    return Depends(check)


async def idempotency(request: Request, idempotency_key: str | None = Header(default=None)) -> Idem:
    body = await request.body()
    return make_idem(idempotency_key, request.method, request.url.path, body)


def invalid(exc: PydanticValidationError, *where: str, body: Any = None) -> RequestValidationError:
    """FastAPI's own 422 for a value a lean handler validated with pydantic.

    ``where`` is where FastAPI would have found the value (``"body"``, or
    ``"query", "expiring_days"``); each error's location is put under it, so
    the answer is byte for byte the one the documented route gives.
    """
    errors = [{**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False)]
    return RequestValidationError(errors, body=body)


def run(ctx: Context, handler: Callable[[UnitOfWork], T]) -> T:
    """Run a handler in its own unit of work.

    If two requests with one Idempotency-Key but different members race, the
    loser's insert of the key fails on its unique index; running it again
    finds the winner's stored response.
    """
    for attempt in range(2):
        try:
            if ctx.settings.is_sqlite:
                with SQLITE_WRITER, UnitOfWork(ctx.engine, ctx.settings) as uow:
                    return handler(uow)
            with UnitOfWork(ctx.engine, ctx.settings) as uow:
                return handler(uow)
        except sa.exc.IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def read(ctx: Context, handler: Callable[[UnitOfWork], T]) -> T:
    """Run a read-only handler in its own unit of work (no writer lock taken)."""
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        return handler(uow)


#: Per engine, the same engine (same pool) with connections in autocommit.
_autocommit_engines: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def read_now(ctx: Context, handler: Callable[[UnitOfWork], T]) -> T:
    """Run a read-only handler that needs no snapshot shared by its statements.

    On PostgreSQL its connection is in autocommit: each statement is its own
    transaction — what READ COMMITTED, the default, gives a statement inside
    one anyway — without the ``BEGIN`` and ``ROLLBACK`` round trips around
    it, so a one-statement read (the member summary) costs one round trip
    instead of three. The pool sets the connection back to the engine's
    isolation level when it is returned, so writers never see autocommit.
    Only for handlers that never write (a write would commit at once).
    On SQLite, :func:`read`.
    """
    if ctx.settings.is_sqlite:
        return read(ctx, handler)
    engine = _autocommit_engines.get(ctx.engine)
    if engine is None:
        engine = _autocommit_engines[ctx.engine] = ctx.engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
    with UnitOfWork(engine, ctx.settings) as uow:
        return handler(uow)


def fresh_uow(ctx: Context) -> UnitOfWork:
    """A unit of work not yet opened, for services that open and commit it themselves."""
    return UnitOfWork(ctx.engine, ctx.settings)


def write(ctx: Context, handler: Callable[[UnitOfWork], T]) -> T:
    """Run a service that opens and commits its own unit of work, as this process's
    only SQLite writer at that moment (no lock on PostgreSQL, whose rows lock)."""
    if ctx.settings.is_sqlite:
        with SQLITE_WRITER:
            return handler(fresh_uow(ctx))
    return handler(fresh_uow(ctx))


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``null``: JSON has no NaN, and an
    estimate that cannot be computed yet (no hold-out, no answers) is unknown."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def masked(field: str, value: Any, visible: bool) -> Any:
    """The dashboard's masking rule (:mod:`kizuna.web.masking`), imported only when
    used: importing ``kizuna.web`` loads the whole dashboard, which an API-only
    process does not need at start-up."""
    from kizuna.web.masking import PERSONAL_FIELDS
    from kizuna.web.masking import masked as mask

    return mask(field, value, visible) if field in PERSONAL_FIELDS else value


CtxDep = Annotated[Context, Depends(_context)]
IdemDep = Annotated[Idem, Depends(idempotency)]
KeyDep = Annotated[auth.ApiKey, Depends(caller)]
