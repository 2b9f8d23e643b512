"""Cursor pagination for every ``/v1`` list: opaque signed cursors, ``next_cursor`` and ``Link``.

Why cursors and not ``?page=``: an OFFSET re-reads every earlier row and
shifts when rows are added while a client walks the list, so it shows some
rows twice and skips others. A cursor remembers the sort key of the last row
shown (normally its id) and the next page starts strictly after it, which the
primary-key index serves directly, so page 5,000 costs what page 1 costs.

A cursor is ``base64url(json) + "." + HMAC``: clients must treat it as
opaque, and a cursor that was edited, truncated or taken from another list is
refused with a 422 that says to start again without it. The signing key is
derived from the workspace secret, so cursors survive restarts and work on
every API process that shares the workspace settings.

Use in a router::

    @router.get("/things", response_model=Page[Thing])
    def things(request: Request, ctx: CtxDep, limit: Limit = DEFAULT_LIMIT,
               cursor: CursorArg = None) -> JSONResponse:
        after = after_id(ctx, "things", cursor)
        rows = ...  # WHERE id > after ORDER BY id LIMIT limit + 1
        return page_response(request, ctx, "things", rows, limit, key=lambda r: r["id"])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.bootstrap import Context
from kizuna.errors import ValidationError

T = TypeVar("T")

DEFAULT_LIMIT = 50
#: Bigger pages are exports, not lists; ask for CSV or the Python API instead.
MAX_LIMIT = 500

Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}."),
]
CursorArg = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="The `next_cursor` of the previous page; omit it for the first page.",
    ),
]


class Page(BaseModel, Generic[T]):
    """One page of a list, and the cursor of the next (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null when this is the last page.",
        examples=["eyJrIjo0Mn0.3q2-7w"],
    )


_keys: dict[str, bytes] = {}


def _key(ctx: Context) -> bytes:
    from kizuna.automation.unsubscribe import _workspace_secret

    workspace = str(ctx.settings.workspace)
    if workspace not in _keys:
        # Derived, so a cursor's signature reveals nothing about the session key.
        secret = _workspace_secret(ctx.settings)
        _keys[workspace] = hmac.new(secret, b"kizuna-api-cursor-v1", hashlib.sha256).digest()
    return _keys[workspace]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(ctx: Context, list_name: str, body: str) -> str:
    mac = hmac.new(_key(ctx), f"{list_name}\n{body}".encode(), hashlib.sha256).digest()
    return _b64(mac[:12])


def encode_cursor(ctx: Context, list_name: str, position: Mapping[str, Any]) -> str:
    """An opaque cursor for ``position`` in the list ``list_name`` (e.g. ``customers``)."""
    body = _b64(json.dumps(dict(position), separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(ctx, list_name, body)}"


def decode_cursor(ctx: Context, list_name: str, cursor: str | None) -> dict[str, Any] | None:
    """The position a cursor of ``list_name`` stands for; ``None`` for no cursor.

    Raises :class:`ValidationError` for a cursor that was not issued for this
    list by this workspace.
    """
    if cursor is None or cursor == "":
        return None
    refused = ValidationError(
        "cursor: this cursor is not valid for this list (it was changed, cut short or "
        "belongs to another list); request the first page without `cursor` and follow "
        "`next_cursor` from there"
    )
    body, dot, mac = cursor.partition(".")
    if not dot or not hmac.compare_digest(mac, _mac(ctx, list_name, body)):
        raise refused
    try:
        position = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not isinstance(position, dict):
        raise refused
    return position


def after_id(ctx: Context, list_name: str, cursor: str | None) -> int:
    """The id after which the page starts (0 for the first page) for id-ordered lists."""
    value = after_value(ctx, list_name, cursor)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError("cursor: not a cursor of this list; start again without `cursor`")
    return value


def after_value(ctx: Context, list_name: str, cursor: str | None) -> Any:
    """The sort key after which the page starts; ``None`` for the first page."""
    position = decode_cursor(ctx, list_name, cursor)
    return None if position is None else position.get("after")


def next_link(request: Request, cursor: str) -> str:
    """The URL of the next page: this request's URL with ``cursor`` replaced."""
    return str(request.url.include_query_params(cursor=cursor))


def page_response(
    request: Request,
    ctx: Context,
    list_name: str,
    rows: Sequence[T],
    limit: int,
    *,
    key: Callable[[T], Any],
    item: Callable[[T], Any] = lambda r: r,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A page from ``rows`` fetched with ``LIMIT limit + 1`` in ascending ``key`` order.

    The extra row only tells whether a next page exists; it is not shown.
    The next page's cursor is the key of the last row shown, also sent as an
    RFC 8288 ``Link: <...>; rel="next"`` header for generic HTTP clients.
    """
    shown = list(rows[:limit])
    cursor = None
    if len(rows) > limit and shown:
        cursor = encode_cursor(ctx, list_name, {"after": key(shown[-1])})
    return paged(request, [item(r) for r in shown], cursor, extra)


def paged(
    request: Request,
    items: list[Any],
    cursor: str | None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The JSON response of a page whose cursor was computed by the caller."""
    headers = {"Link": f'<{next_link(request, cursor)}>; rel="next"'} if cursor else None
    body = {**(extra or {}), "items": items, "next_cursor": cursor}
    return JSONResponse(body, headers=headers)
