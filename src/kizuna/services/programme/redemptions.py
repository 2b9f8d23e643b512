"""Spending points: redeem at once, or reserve at checkout then confirm or cancel.

The balance check and the deduction happen under the member's row lock in
one transaction, so fifty tills redeeming against one balance at once can
never spend a point twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.ledger import Hold
from kizuna.errors import NotFound, ValidationError
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.members import balance_dict, open_member
from kizuna.services.programme.store import (
    MAX_ID,
    hold_exists,
    save_book,
    save_hold,
)
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

#: No real redemption spends more points than this in one go.
MAX_POINTS = 10**10


@dataclass(frozen=True)
class Redeem:
    """Spend ``points`` now (``hold`` False) or hold them for a checkout (``hold`` True)."""

    member_id: str
    points: int
    redemption_id: str
    hold: bool = False
    order_ref: str | None = None
    reason: str = "redeemed"
    idem: Idem | None = None


@dataclass(frozen=True)
class Settle:
    """Confirm or cancel a redemption by id."""

    redemption_id: str
    action: str  # confirm | cancel
    idem: Idem | None = None


def _hold_dict(hold: Hold, member: str) -> dict[str, Any]:
    return {
        "redemption_id": hold.ref,
        "member_id": member,
        "points": hold.points,
        "state": hold.state,
        "lots": [
            {
                "lot_id": lot.id,
                "points": n,
                "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
            }
            for lot, n in hold.allocations
        ],
    }


def redeem(uow: UnitOfWork, cmd: Redeem, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    now = now or datetime.now(UTC)
    if not cmd.redemption_id or len(cmd.redemption_id) > MAX_ID:
        raise ValidationError(f"redemption_id must be 1 to {MAX_ID} characters")
    if isinstance(cmd.points, bool) or cmd.points <= 0 or cmd.points > MAX_POINTS:
        raise ValidationError(
            f"points must be a whole number between 1 and {MAX_POINTS}, got {cmd.points}"
        )
    opened = open_member(uow, None, cmd.member_id, now)
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    if hold_exists(uow, cmd.redemption_id):
        raise ValidationError(
            f"redemption {cmd.redemption_id} already exists; use a new redemption id"
        )
    book = opened.book
    if cmd.hold:
        hold = book.reserve(cmd.points, cmd.redemption_id, at=now, reason=cmd.reason)
    else:
        hold = book.redeem(cmd.points, cmd.redemption_id, at=now, reason=cmd.reason)
    save_book(uow, opened.account, book, opened.active.version)
    save_hold(uow, opened.account, hold, now, order_ref=cmd.order_ref, new=True)
    body = {**_hold_dict(hold, cmd.member_id), "balance": balance_dict(book.balance)}
    remember(uow, cmd.idem, 201, body)
    uow.commit()
    return 201, body


def settle(uow: UnitOfWork, cmd: Settle, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Confirm a reserved redemption, or cancel one and give its points back to their lots."""
    now = now or datetime.now(UTC)
    r = pt.point_redemptions.c
    row = uow.conn.execute(
        sa.select(r.customer_id).where(r.external_id == cmd.redemption_id)
    ).first()
    if row is None:
        raise NotFound(f"unknown redemption {cmd.redemption_id!r}")
    member = uow.conn.execute(
        sa.select(t.customers.c.external_id).where(t.customers.c.id == row.customer_id)
    ).scalar_one()
    opened = open_member(uow, int(row.customer_id), member, now, hold_refs=(cmd.redemption_id,))
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    book = opened.book
    if cmd.action == "confirm":
        hold = book.confirm(cmd.redemption_id, at=now)
    elif cmd.action == "cancel":
        hold = book.cancel(cmd.redemption_id, at=now)
    else:
        raise ValidationError(f"unknown action {cmd.action!r}; use confirm or cancel")
    save_book(uow, opened.account, book, opened.active.version)
    save_hold(uow, opened.account, hold, now, new=False)
    body = {**_hold_dict(hold, member), "balance": balance_dict(book.balance)}
    remember(uow, cmd.idem, 200, body)
    uow.commit()
    return 200, body
