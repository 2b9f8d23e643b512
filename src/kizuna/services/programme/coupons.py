"""Coupons: bulk generation of unique codes, validation, and atomic single use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.rewards import Coupon, check_coupon, new_code, normalise_code, validate_spec
from kizuna.errors import NotFound, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

MAX_BATCH = 1_000_000


def generate(
    uow: UnitOfWork,
    *,
    count: int,
    kind: str,
    value: int,
    batch: str,
    min_spend: int = 0,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    item: str | None = None,
    prefix: str = "",
    customer_id: int | None = None,
) -> list[str]:
    """Insert ``count`` fresh single-use codes in one transaction and return them."""
    if not 1 <= count <= MAX_BATCH:
        raise ValidationError(f"count must be between 1 and {MAX_BATCH}, got {count}")
    validate_spec(kind, value)
    if normalise_code(prefix) != prefix.upper().strip():
        raise ValidationError(f"prefix {prefix!r} may not contain I, L or O (they read as 1 and 0)")
    now = datetime.now(UTC)
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_code(prefix))
    existing: set[str] = set()
    c = pt.coupons.c
    ordered = sorted(codes)
    for i in range(0, len(ordered), 5000):
        existing.update(
            uow.conn.execute(sa.select(c.code).where(c.code.in_(ordered[i : i + 5000]))).scalars()
        )
    while existing:  # a 60-bit collision: replace it rather than fail the batch
        codes -= existing
        while len(codes) < count:
            codes.add(new_code(prefix))
        existing = set(
            uow.conn.execute(sa.select(c.code).where(c.code.in_(sorted(codes)))).scalars()
        )
    rows = [
        {
            "code": code,
            "batch": batch,
            "kind": kind,
            "value": value,
            "item": item,
            "min_spend": min_spend,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "max_uses": 1,
            "uses": 0,
            "created_at": now,
            "customer_id": customer_id,
        }
        for code in sorted(codes)
    ]
    for i in range(0, len(rows), 5000):
        uow.conn.execute(sa.insert(pt.coupons), rows[i : i + 5000])
    return sorted(codes)


def _load(uow: UnitOfWork, code: str) -> Coupon:
    c = pt.coupons.c
    row = uow.conn.execute(sa.select(pt.coupons).where(c.code == normalise_code(code))).first()
    if row is None:
        raise NotFound(f"no coupon {code!r}; check the code for typos")
    return Coupon(
        row.code,
        row.kind,
        row.value,
        row.min_spend,
        row.valid_from,
        row.valid_until,
        row.max_uses,
        row.uses,
        row.item,
        row.customer_id,
    )


def validate(
    uow: UnitOfWork, code: str, order_total: int = 0, now: datetime | None = None
) -> dict[str, Any]:
    """Would ``code`` apply to an order of ``order_total``, and for how much."""
    coupon = _load(uow, code)
    discount = check_coupon(coupon, order_total, now or datetime.now(UTC), coupon.customer)
    return {
        "code": coupon.code,
        "kind": coupon.kind,
        "value": coupon.value,
        "item": coupon.item,
        "discount": discount,
        "valid": True,
    }


def use(uow: UnitOfWork, code: str, order_total: int, customer_id: int, now: datetime) -> int:
    """Spend one use of ``code``; the conditional UPDATE makes two tills unable to both use it."""
    coupon = _load(uow, code)
    discount = check_coupon(
        coupon, order_total, now, customer_id if coupon.customer is not None else None
    )
    c = pt.coupons.c
    res = uow.conn.execute(
        sa.update(pt.coupons)
        .where(c.code == coupon.code, c.uses < c.max_uses)
        .values(uses=c.uses + 1)
    )
    if res.rowcount != 1:
        raise ValidationError(f"coupon {coupon.code} has already been used")
    return discount
