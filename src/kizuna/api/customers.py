"""/v1/customers: the customer list, one customer's profile and their 360 timeline.

Reads go through the same services as ``kizuna customer show`` and the
dashboard (:mod:`kizuna.services.customer_list`, :mod:`kizuna.services.customers`),
so the three never disagree. Analyst keys get personal fields masked by the
dashboard's rules (:mod:`kizuna.web.masking`) and may search by id only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, masked
from kizuna.api.pagination import CursorArg, Limit, Page, after_value, encode_cursor, paged
from kizuna.errors import ValidationError
from kizuna.services.customer_list import search_customers
from kizuna.services.customers import TIMELINE_KINDS, customer_360, jsonable

router = APIRouter(tags=["customers"])
CustomerId = Annotated[
    str, Path(min_length=1, max_length=128, description="Your customer id (`customer_id`).")
]


class CustomerListItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C00042",
                    "name": "山田 太郎",
                    "email": "taro@example.jp",
                    "phone": "090-1234-5678",
                    "region": "Tokyo",
                    "signup_at": "2025-01-01T00:00:00+00:00",
                    "orders": 3,
                    "revenue": 12800,
                }
            ]
        }
    )
    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    region: str | None
    signup_at: datetime | None
    orders: int
    revenue: int = Field(description="Net revenue in minor units (yen for JPY).")


class CustomerProfile(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C00042",
                    "name": "山田 *",
                    "email": "t***@example.jp",
                    "region": "Tokyo",
                    "consents": {
                        "email": {
                            "granted": True,
                            "changed_at": "2025-01-01T00:00:00+00:00",
                            "source": "signup",
                        }
                    },
                    "stats": {"orders": 3, "revenue": 12800, "latest_nps": 9},
                }
            ]
        },
    )
    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: date | str | None = None
    region: str | None = None
    postal_code: str | None = None
    consents: dict[str, Any]
    stats: dict[str, Any]


class CustomerOut(BaseModel):
    customer: CustomerProfile
    currency: str = Field(examples=["JPY"])
    timezone: str = Field(examples=["Asia/Tokyo"])


class TimelineItemOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2025-03-01T03:00:00+00:00",
                    "local_at": "2025-03-01T12:00:00+09:00",
                    "kind": "order",
                    "title": "Order O1001: ¥4,800 (2 lines)",
                    "detail": {"order_id": "O1001", "total_amount": 4800},
                }
            ]
        }
    )
    at: datetime
    local_at: datetime
    kind: str
    title: str
    detail: dict[str, Any]


def _mask(row: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    visible = key.may("personal")
    return {k: masked(k, v, visible) for k, v in row.items()}


@router.get(
    "/customers",
    response_model=Page[CustomerListItem],
    summary="Customers by id, optionally searched; personal data masked for analyst keys",
)
def list_customers(
    request: Request,
    ctx: CtxDep,
    key: Annotated[ApiKey, allow("read")],
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="Matches id, name or e-mail (any case); analyst keys match the id only.",
        ),
    ] = "",
    limit: Limit = 50,
    cursor: CursorArg = None,
) -> JSONResponse:
    after = after_value(ctx, "customers", cursor)
    if after is not None and not isinstance(after, str):
        raise ValidationError("cursor: not a cursor of this list; start again without `cursor`")
    fields = ("id", "name", "email") if key.may("personal") else ("id",)
    page = search_customers(ctx.engine, q, after=after, limit=limit, fields=fields)
    items = [_mask(jsonable(vars(r)), key) for r in page.rows]
    next_cursor = (
        encode_cursor(ctx, "customers", {"after": page.next_after}) if page.next_after else None
    )
    return paged(request, items, next_cursor)


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    summary="One customer's profile, consents and whole-history totals",
)
def get_customer(
    customer_id: CustomerId, ctx: CtxDep, key: Annotated[ApiKey, allow("read")]
) -> JSONResponse:
    found = customer_360(ctx.engine, ctx.settings, customer_id, limit=1).to_dict()
    return JSONResponse(
        {
            "customer": _mask(found["customer"], key),
            "currency": found["currency"],
            "timezone": found["timezone"],
        }
    )


@router.get(
    "/customers/{customer_id}/timeline",
    response_model=Page[TimelineItemOut],
    summary="The customer 360 timeline, newest first",
    description="Orders, returns, events, surveys, contacts, community, trainings, reviews, "
    "referrals and consent changes merged newest first. A page never splits one instant, "
    "so it may hold a few more than `limit` items.",
)
def timeline(
    request: Request,
    customer_id: CustomerId,
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("read")],
    limit: Limit = 50,
    cursor: CursorArg = None,
    kind: Annotated[
        list[str] | None,
        Query(description=f"Keep only these kinds: {', '.join(TIMELINE_KINDS)}."),
    ] = None,
) -> JSONResponse:
    before_text = after_value(ctx, f"timeline:{customer_id}", cursor)
    before = None
    if before_text is not None:
        try:
            before = datetime.fromisoformat(str(before_text))
        except ValueError:
            raise ValidationError(
                "cursor: not a cursor of this list; start again without `cursor`"
            ) from None
    found = customer_360(
        ctx.engine, ctx.settings, customer_id, limit=limit, before=before, kinds=kind
    )
    items = [item.to_dict() for item in found.timeline]
    next_cursor = (
        encode_cursor(ctx, f"timeline:{customer_id}", {"after": found.next_before.isoformat()})
        if found.next_before is not None
        else None
    )
    return paged(request, items, next_cursor)
