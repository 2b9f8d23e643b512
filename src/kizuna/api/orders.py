"""/v1/orders and /v1/quotes: earn for a purchase, preview it, refund it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kizuna.api.deps import SQLITE_WRITER, CtxDep, IdemDep, allow, run
from kizuna.bootstrap import Context
from kizuna.services.programme import batch, group_commit, orders, refunds
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["orders"])
StrictInt = Annotated[int, Field(strict=True)]


class LineIn(BaseModel):
    line_no: StrictInt | None = Field(
        None, description="Line number; defaults to the position, from 1."
    )
    amount: StrictInt = Field(
        description="Line amount in minor units (yen for JPY, cents for USD), after discounts."
    )
    quantity: StrictInt = 1
    product_id: str | None = Field(
        None, max_length=128, description="Your product id; its category comes from the catalogue."
    )
    category_id: str | None = Field(None, max_length=128)


class OrderIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=128)
    member_id: str = Field(min_length=1, max_length=128)
    lines: list[LineIn] = Field(min_length=1)
    ordered_at: datetime | None = Field(None, description="With a timezone offset; default: now.")
    currency: str | None = Field(None, max_length=3)
    coupon_code: str | None = Field(None, max_length=64)
    channel: str | None = Field(None, max_length=16)
    store: str | None = Field(None, max_length=100)


class QuoteIn(BaseModel):
    member_id: str | None = Field(None, max_length=128)
    lines: list[LineIn] = Field(min_length=1)
    ordered_at: datetime | None = None
    currency: str | None = Field(None, max_length=3)


class RefundLineIn(BaseModel):
    line_no: StrictInt
    amount: StrictInt = Field(description="Refunded amount of the line in minor units.")
    quantity: StrictInt | None = Field(
        None, ge=1, le=1_000_000, description="Items returned (default: from the amount)."
    )


class RefundIn(BaseModel):
    refund_id: str = Field(min_length=1, max_length=128)
    lines: list[RefundLineIn] | None = Field(None, description="Omit to refund the whole order.")
    reason: str = Field("refund", max_length=200)


def _lines(lines: list[LineIn]) -> tuple[orders.OrderLine, ...]:
    return tuple(
        orders.OrderLine(
            x.line_no if x.line_no is not None else i,
            x.amount,
            x.quantity,
            x.product_id,
            x.category_id,
        )
        for i, x in enumerate(lines, start=1)
    )


def _open_group_uow(ctx: Context) -> Callable[[], AbstractContextManager[UnitOfWork]]:
    @contextmanager
    def open_uow() -> Iterator[UnitOfWork]:
        lock = SQLITE_WRITER if ctx.settings.is_sqlite else nullcontext()
        with lock, UnitOfWork(ctx.engine, ctx.settings) as uow:
            yield uow

    return open_uow


_writers: weakref.WeakKeyDictionary[Context, group_commit.GroupWriter | None] = (
    weakref.WeakKeyDictionary()
)
_writers_lock = threading.Lock()


def group_writer(ctx: Context) -> group_commit.GroupWriter | None:
    """This process's group writer for the workspace, or None when group commit is off."""
    with _writers_lock:
        if ctx not in _writers:
            mode = ctx.settings.earn_group_commit
            on = mode == "on" or (mode == "auto" and not ctx.settings.is_sqlite)
            _writers[ctx] = (
                group_commit.GroupWriter(
                    _open_group_uow(ctx),
                    lambda cmd, now: run(ctx, lambda uow: orders.record_order(uow, cmd, now)),
                )
                if on
                else None
            )
        return _writers[ctx]


@router.post(
    "/orders",
    status_code=201,
    dependencies=[allow("earn")],
    summary="Record an order and earn its points",
)
async def record_order(body: OrderIn, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    """Async so that the call waits for its group's commit without holding a worker thread
    (see :mod:`kizuna.services.programme.group_commit`)."""
    cmd = orders.RecordOrder(
        body.order_id,
        body.member_id,
        _lines(body.lines),
        body.ordered_at,
        body.currency,
        body.coupon_code,
        body.channel,
        body.store,
        idem,
    )
    writer = group_writer(ctx)
    if writer is None:
        status, result = await run_in_threadpool(
            run, ctx, lambda uow: orders.record_order(uow, cmd)
        )
    else:
        status, result = await writer.record(cmd)
    return JSONResponse(result, status_code=status)


@router.post(
    "/quotes",
    dependencies=[allow("quote")],
    summary="What an order would earn, and why (writes nothing)",
)
def quote(body: QuoteIn, ctx: CtxDep) -> JSONResponse:
    cmd = orders.RecordOrder(
        "quote", body.member_id or "", _lines(body.lines), body.ordered_at, body.currency
    )
    return JSONResponse(run(ctx, lambda uow: orders.quote(uow, cmd)))


@router.post(
    "/orders/{order_id}/refunds",
    status_code=201,
    dependencies=[allow("refund")],
    summary="Refund or return lines of an order",
)
def refund(
    order_id: str,
    body: RefundIn,
    idem: IdemDep,
    ctx: CtxDep,
) -> JSONResponse:
    lines = tuple((x.line_no, x.amount) for x in body.lines) if body.lines is not None else None
    quantities = {x.line_no: x.quantity for x in body.lines or () if x.quantity is not None}
    cmd = refunds.RefundOrder(
        order_id, body.refund_id, lines, idem, body.reason, quantities=quantities
    )
    status, result = run(ctx, lambda uow: refunds.refund(uow, cmd))
    return JSONResponse(result, status_code=status)


class BatchIn(BaseModel):
    orders: list[OrderIn] = Field(min_length=1, max_length=100_000)


@router.post(
    "/orders:batch",
    status_code=201,
    dependencies=[allow("batch")],
    summary="Back-office load: earn for many orders in one transaction (all or nothing)",
)
def record_orders(body: BatchIn, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    cmds = [
        orders.RecordOrder(
            o.order_id,
            o.member_id,
            _lines(o.lines),
            o.ordered_at,
            o.currency,
            o.coupon_code,
            o.channel,
            o.store,
        )
        for o in body.orders
    ]
    status, result = run(ctx, lambda uow: batch.record_orders(uow, cmds, idem))
    return JSONResponse(result, status_code=status)
