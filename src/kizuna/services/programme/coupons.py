"""Coupons: bulk generation of unique codes, validation, and atomic use.

A code is single-use by default. A multi-use code (``max_uses`` > 1, e.g. a
campaign code printed on a flyer) may also limit how often one member uses
it (``per_customer_limit``): the total is taken by a conditional UPDATE, so
two tills can never both take the last use, and the member's own count is
read under the member's row lock (every earn takes it first), so one
member's concurrent orders cannot both slip under the limit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.rewards import Coupon, check_coupon, new_code, normalise_code, validate_spec
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.programme.store import customer_id_of
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
    max_uses: int = 1,
    per_customer_limit: int | None = None,
    code: str | None = None,
) -> list[str]:
    """Insert ``count`` fresh codes (each usable ``max_uses`` times) and return them.

    ``code`` names the one code to create instead (a campaign code such as
    ``SPRING-10``); it must be new.
    """
    if not 1 <= count <= MAX_BATCH:
        raise ValidationError(f"count must be between 1 and {MAX_BATCH}, got {count}")
    validate_spec(kind, value)
    if not 1 <= max_uses <= 10**9:
        raise ValidationError(f"max_uses must be between 1 and 1000000000, got {max_uses}")
    if per_customer_limit is not None and not 1 <= per_customer_limit <= max_uses:
        raise ValidationError(
            f"per_customer_limit must be between 1 and max_uses ({max_uses}), got {per_customer_limit}"
        )
    if normalise_code(prefix) != prefix.upper().strip():
        raise ValidationError(f"prefix {prefix!r} may not contain I, L or O (they read as 1 and 0)")
    now = datetime.now(UTC)
    codes: set[str] = set()
    if code is not None:
        named = normalise_code(code)
        if count != 1 or not 3 <= len(named) <= 64 or not named.replace("-", "").isalnum():
            raise ValidationError(
                "a named code is one code of 3 to 64 letters, digits and dashes, e.g. SPRING-10"
            )
        if _exists(uow, named):
            raise Conflict(f"coupon {named} already exists; choose another code")
        codes.add(named)
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
            "max_uses": max_uses,
            "uses": 0,
            "created_at": now,
            "customer_id": customer_id,
            "per_customer_limit": per_customer_limit,
        }
        for code in sorted(codes)
    ]
    for i in range(0, len(rows), 5000):
        uow.conn.execute(sa.insert(pt.coupons), rows[i : i + 5000])
    return sorted(codes)


def _exists(uow: UnitOfWork, code: str) -> bool:
    c = pt.coupons.c
    return uow.conn.execute(sa.select(c.id).where(c.code == code)).first() is not None


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
    uow: UnitOfWork,
    code: str,
    order_total: int = 0,
    now: datetime | None = None,
    member: str | None = None,
) -> dict[str, Any]:
    """Would ``code`` apply to an order of ``order_total`` (by ``member``), and for how much."""
    coupon = _load(uow, code)
    customer_id = customer_id_of(uow, member) if member else None
    discount = check_coupon(
        coupon, order_total, now or datetime.now(UTC), customer_id or coupon.customer
    )
    left = None
    limit = _limit(uow, coupon.code)
    if customer_id is not None and limit is not None:
        left = limit[1] - _used_by(uow, limit[0], customer_id)
        if left <= 0:
            raise ValidationError(_limit_message(coupon.code, limit[1]))
    return {
        "code": coupon.code,
        "kind": coupon.kind,
        "value": coupon.value,
        "item": coupon.item,
        "discount": discount,
        "uses_left": coupon.max_uses - coupon.uses,
        "member_uses_left": left,
        "valid": True,
    }


def _limit(uow: UnitOfWork, code: str) -> tuple[int, int] | None:
    c = pt.coupons.c
    row = uow.conn.execute(sa.select(c.id, c.per_customer_limit).where(c.code == code)).one()
    return None if row.per_customer_limit is None else (int(row.id), int(row.per_customer_limit))


def _used_by(uow: UnitOfWork, coupon_id: int, customer_id: int) -> int:
    u = pt.coupon_uses.c
    return int(
        uow.conn.execute(
            sa.select(sa.func.count()).where(u.coupon_id == coupon_id, u.customer_id == customer_id)
        ).scalar_one()
    )


def _limit_message(code: str, limit: int) -> str:
    times = "once" if limit == 1 else f"{limit} times"
    return f"coupon {code} may be used {times} per member, and this member has used it up"


def use(
    uow: UnitOfWork,
    code: str,
    order_total: int,
    customer_id: int,
    now: datetime,
    order_ref: str | None = None,
) -> int:
    """Spend one use of ``code`` for the (locked) member; the discount it gives.

    The conditional UPDATE makes two tills unable to both take the last use;
    the per-member count is safe because the caller holds the member's lock.
    """
    coupon = _load(uow, code)
    discount = check_coupon(
        coupon, order_total, now, customer_id if coupon.customer is not None else None
    )
    c = pt.coupons.c
    row = uow.conn.execute(
        sa.update(pt.coupons)
        .where(c.code == coupon.code, c.uses < c.max_uses)
        .values(uses=c.uses + 1)
        .returning(c.id, c.per_customer_limit)
    ).first()
    if row is None:
        raise ValidationError(f"coupon {coupon.code} has already been used")
    if row.per_customer_limit is not None:
        if _used_by(uow, int(row.id), customer_id) >= row.per_customer_limit:
            raise ValidationError(_limit_message(coupon.code, int(row.per_customer_limit)))
        uow.conn.execute(
            sa.insert(pt.coupon_uses).values(
                coupon_id=row.id, customer_id=customer_id, order_ref=order_ref, used_at=now
            )
        )
    return discount
