"""Coupons and rewards: codes nobody can guess, and whether one applies to an order.

Codes use Crockford's base-32 alphabet (no I, L, O, U: nothing to misread at
a till) drawn from :mod:`secrets`; 12 characters carry 60 bits, so guessing
one valid code among a million issued takes about 10^12 tries.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from kizuna.errors import ValidationError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
KINDS = ("percent", "fixed", "free_item")


def new_code(prefix: str = "") -> str:
    """A fresh random code like ``KZ-7QH2-M9XD-41TB``."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    groups = "-".join(body[i : i + 4] for i in range(0, CODE_LENGTH, 4))
    return f"{prefix}-{groups}" if prefix else groups


def normalise_code(code: str) -> str:
    """What a person typed, made comparable: upper case, O->0, I/L->1, spaces dropped."""
    text = code.strip().upper().replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


@dataclass(frozen=True)
class Coupon:
    code: str
    kind: str
    value: int
    min_spend: int
    valid_from: datetime | None
    valid_until: datetime | None
    max_uses: int
    uses: int
    item: str | None = None
    customer: int | None = None


def check_coupon(coupon: Coupon, order_total: int, now: datetime, customer: int | None) -> int:
    """The discount ``coupon`` gives on an order of ``order_total``; raises why it cannot apply."""
    if coupon.uses >= coupon.max_uses:
        raise ValidationError(f"coupon {coupon.code} has already been used")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise ValidationError(
            f"coupon {coupon.code} is not valid until {coupon.valid_from.isoformat()}"
        )
    if coupon.valid_until is not None and now >= coupon.valid_until:
        raise ValidationError(f"coupon {coupon.code} expired at {coupon.valid_until.isoformat()}")
    if coupon.customer is not None and coupon.customer != customer:
        raise ValidationError(f"coupon {coupon.code} belongs to another member")
    if order_total < coupon.min_spend:
        raise ValidationError(
            f"coupon {coupon.code} needs a spend of at least {coupon.min_spend}; the order is {order_total}"
        )
    if coupon.kind == "percent":
        return order_total * coupon.value // 100
    if coupon.kind == "fixed":
        return min(coupon.value, order_total)
    return 0


def validate_spec(kind: str, value: int) -> None:
    if kind not in KINDS:
        raise ValidationError(f"coupon kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "percent" and not 1 <= value <= 100:
        raise ValidationError(f"a percent coupon takes 1 to 100, got {value}")
    if kind == "fixed" and value <= 0:
        raise ValidationError(f"a fixed coupon needs a positive amount, got {value}")
