"""/v1/orders and /v1/quotes: earn for a purchase, preview it, refund it."""

from __future__ import annotations

import email.message
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from kizuna.api.deps import SQLITE_WRITER, CtxDep, IdemDep, allow, caller, context, invalid, run
from kizuna.bootstrap import Context
from kizuna.services.programme import batch, group_commit, orders, refunds
from kizuna.services.programme.idempotency import Idem, make_idem
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


async def _record(body: OrderIn, idem: Idem, ctx: Context) -> JSONResponse:
    """Earn for one order: through this process's group writer when group commit is
    on, else alone in a worker thread. Async so that the call waits for its
    group's commit without holding a worker thread
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


def _is_json(content_type: str) -> bool:
    """FastAPI's rule for parsing a body as JSON: ``application/json`` or
    ``application/*+json``, parameters allowed; anything else (or no
    Content-Type) is validated as bytes and refused."""
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


#: No body at all (FastAPI's ``Undefined``): a "Field required" error on ``body``.
_NO_BODY: Any = object()


async def _read_order(request: Request) -> tuple[bytes, OrderIn | None, Any]:
    """The body's bytes and, before the key is checked, what FastAPI decides then.

    FastAPI reads and parses the body before it solves any dependency, so
    malformed JSON is a 422 even without a key (and an unreadable body a
    400); only the model's validation waits for the key. The common case, a
    valid order, is parsed and validated in one pass by pydantic's JSON
    parser (``OrderIn`` itself). Anything it refuses is parsed again exactly
    as FastAPI does (``json.loads``), so the error, or the value to validate
    after the key, is FastAPI's own — also where the two parsers differ
    (``NaN``, UTF-16, lone surrogates).
    Returns ``(bytes, order, None)`` or ``(bytes, None, value to validate)``.
    """
    try:
        body = await request.body()
        if not body:
            return body, None, _NO_BODY
        content_type = request.headers.get("content-type")
        if not content_type or not _is_json(content_type):
            return body, None, body
        try:
            return body, OrderIn.model_validate_json(body), None
        except PydanticValidationError:
            return body, None, json.loads(body)
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", e.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": e.msg},
                }
            ],
            body=e.doc,
        ) from e
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


def _url_path(request: Request) -> str:
    """``request.url.path`` (what :func:`~kizuna.api.deps.idempotency` hashes)
    without building the whole URL: Starlette takes the scope's path with
    ``?``, ``#`` and ``\\`` escaped, which is all its ``.path`` keeps."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


@router.post("/orders", status_code=201, include_in_schema=False)
async def served_record_order(request: Request) -> JSONResponse:
    """The till's earn call as served: :func:`record_order` without FastAPI's
    dependency resolution and its generic body handling, which were most of
    the HTTP stack's CPU on this call (``bench/RESULTS.md``, ledger, round 5).

    Registered ahead of :func:`record_order` (same path and method), so it is
    the one that answers; :func:`record_order` stays the published
    description. It does what FastAPI did for :func:`record_order`, in the
    same order: read and parse the body (malformed JSON: 422, before
    anything else), the key (:func:`~kizuna.api.deps.caller`: 401, then 429),
    its scope (403), the Idempotency-Key (the same ``make_idem`` as
    :data:`~kizuna.api.deps.IdemDep`: 422), then the model's validation,
    refused as the same ``RequestValidationError`` (422) — so every answer is
    the same (``tests/api/test_orders_http_answers.py``).
    """
    body, order, value = await _read_order(request)
    key = await caller(request)
    key.require("earn")
    idem = make_idem(request.headers.get("idempotency-key"), "POST", _url_path(request), body)
    if order is None:
        if value is _NO_BODY:
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        try:
            order = OrderIn.model_validate(value, from_attributes=True)
        except PydanticValidationError as exc:
            raise invalid(exc, "body", body=value) from None
    return await _record(order, idem, context(request))


@router.post(
    "/orders",
    status_code=201,
    dependencies=[allow("earn")],
    summary="Record an order and earn its points",
)
async def record_order(body: OrderIn, idem: IdemDep, ctx: CtxDep) -> JSONResponse:
    """Async so that the call waits for its group's commit without holding a worker thread
    (see :mod:`kizuna.services.programme.group_commit`)."""
    # The published operation (its docstring is its OpenAPI description, kept
    # as it was); :func:`served_record_order` answers it.
    return await _record(body, idem, ctx)


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
