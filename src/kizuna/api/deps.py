"""Request plumbing shared by the routers: the context, the caller's key, the Idempotency-Key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Request

from kizuna.api import auth
from kizuna.bootstrap import Context
from kizuna.services.programme.idempotency import Idem, make_idem
from kizuna.services.uow import UnitOfWork

T = TypeVar("T")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def caller(request: Request, authorization: str | None = Header(default=None)) -> auth.ApiKey:
    ctx = context(request)
    return auth.verify(lambda: UnitOfWork(ctx.engine, ctx.settings), authorization)


def allow(permission: str) -> Any:
    """A dependency that admits only keys whose scope grants ``permission``."""

    def check(key: Annotated[auth.ApiKey, Depends(caller)]) -> auth.ApiKey:
        key.require(permission)
        return key

    return Depends(check)


async def idempotency(request: Request, idempotency_key: str | None = Header(default=None)) -> Idem:
    body = await request.body()
    return make_idem(idempotency_key, request.method, request.url.path, body)


#: SQLite allows one writer: queueing writers of this process on a lock is
#: fair and immediate, where SQLite's busy handler sleeps in growing steps.
_sqlite_writer = threading.Lock()


def run(ctx: Context, handler: Callable[[UnitOfWork], T]) -> T:
    """Run a handler in its own unit of work.

    If two requests with one Idempotency-Key but different members race, the
    loser's insert of the key fails on its unique index; running it again
    finds the winner's stored response.
    """
    for attempt in range(2):
        try:
            if ctx.settings.is_sqlite:
                with _sqlite_writer, UnitOfWork(ctx.engine, ctx.settings) as uow:
                    return handler(uow)
            with UnitOfWork(ctx.engine, ctx.settings) as uow:
                return handler(uow)
        except sa.exc.IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


CtxDep = Annotated[Context, Depends(context)]
IdemDep = Annotated[Idem, Depends(idempotency)]
