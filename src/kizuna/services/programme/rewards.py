"""The rewards catalogue: spend points on a reward, with stock and per-member limits.

Stock, the member's limit and the balance are all checked in one
transaction under the member's lock; stock is taken with a conditional
UPDATE, so the last item can only go to one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.errors import Conflict, NotFound, ValidationError
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


@dataclass(frozen=True)
class NewReward:
    reward_id: str
    name: str
    points_cost: int
    stock: int | None = None
    per_member_limit: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class ClaimReward:
    member_id: str
    reward_id: str
    redemption_id: str
    idem: Idem | None = None


def create_reward(uow: UnitOfWork, cmd: NewReward) -> dict[str, Any]:
    if not cmd.reward_id or len(cmd.reward_id) > MAX_ID:
        raise ValidationError(f"reward_id must be 1 to {MAX_ID} characters")
    if cmd.points_cost <= 0:
        raise ValidationError(f"points_cost must be positive, got {cmd.points_cost}")
    for name, value in (("stock", cmd.stock), ("per_member_limit", cmd.per_member_limit)):
        if value is not None and value < 0:
            raise ValidationError(f"{name} cannot be negative")
    r = pt.rewards.c
    if uow.conn.execute(sa.select(r.id).where(r.external_id == cmd.reward_id)).first():
        raise Conflict(f"reward {cmd.reward_id} already exists")
    uow.conn.execute(
        sa.insert(pt.rewards).values(
            external_id=cmd.reward_id,
            name=cmd.name,
            points_cost=cmd.points_cost,
            stock=cmd.stock,
            per_member_limit=cmd.per_member_limit,
            valid_from=cmd.valid_from,
            valid_until=cmd.valid_until,
            created_at=datetime.now(UTC),
        )
    )
    uow.commit()
    return catalogue(uow, cmd.reward_id)[0]


def catalogue(uow: UnitOfWork, reward_id: str | None = None) -> list[dict[str, Any]]:
    r = pt.rewards.c
    q = sa.select(pt.rewards).order_by(r.points_cost)
    if reward_id is not None:
        q = q.where(r.external_id == reward_id)
    return [
        {
            "reward_id": row.external_id,
            "name": row.name,
            "points_cost": row.points_cost,
            "stock": row.stock,
            "per_member_limit": row.per_member_limit,
            "valid_from": row.valid_from.isoformat() if row.valid_from else None,
            "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        }
        for row in uow.conn.execute(q)
    ]


def claim(
    uow: UnitOfWork, cmd: ClaimReward, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Redeem the reward's points cost for the member, atomically with stock and limit."""
    now = now or datetime.now(UTC)
    opened = open_member(uow, None, cmd.member_id, now)
    customer_id = opened.account.customer_id
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    r = pt.rewards.c
    reward = uow.conn.execute(sa.select(pt.rewards).where(r.external_id == cmd.reward_id)).first()
    if reward is None:
        raise NotFound(f"unknown reward {cmd.reward_id!r}; GET /v1/rewards lists the catalogue")
    if reward.valid_from is not None and now < reward.valid_from:
        raise ValidationError(
            f"reward {cmd.reward_id} is not available until {reward.valid_from.isoformat()}"
        )
    if reward.valid_until is not None and now >= reward.valid_until:
        raise ValidationError(f"reward {cmd.reward_id} ended at {reward.valid_until.isoformat()}")
    if reward.per_member_limit is not None:
        red = pt.point_redemptions.c
        taken = uow.conn.execute(
            sa.select(sa.func.count()).where(
                red.customer_id == customer_id, red.reward_id == reward.id, red.state != "cancelled"
            )
        ).scalar_one()
        if taken >= reward.per_member_limit:
            raise ValidationError(
                f"reward {cmd.reward_id} is limited to {reward.per_member_limit} per member"
            )
    if hold_exists(uow, cmd.redemption_id):
        raise ValidationError(
            f"redemption {cmd.redemption_id} already exists; use a new redemption id"
        )
    hold = opened.book.redeem(
        reward.points_cost, cmd.redemption_id, at=now, reason=f"reward {reward.name}"
    )
    if reward.stock is not None:
        res = uow.conn.execute(
            sa.update(pt.rewards).where(r.id == reward.id, r.stock > 0).values(stock=r.stock - 1)
        )
        if res.rowcount != 1:
            raise ValidationError(f"reward {cmd.reward_id} is out of stock")
    save_book(uow, opened.account, opened.book, opened.active.version)
    save_hold(uow, opened.account, hold, now, reward_id=int(reward.id), new=True)
    uow.conn.execute(
        sa.insert(pt.programme_events).values(
            topic="reward.redeemed",
            customer_id=customer_id,
            created_at=now,
            payload={
                "member_id": cmd.member_id,
                "reward_id": cmd.reward_id,
                "redemption_id": cmd.redemption_id,
                "points": reward.points_cost,
            },
        )
    )
    body = {
        "redemption_id": cmd.redemption_id,
        "reward_id": cmd.reward_id,
        "member_id": cmd.member_id,
        "points": reward.points_cost,
        "balance": balance_dict(opened.book.balance),
    }
    remember(uow, cmd.idem, 201, body)
    uow.commit()
    return 201, body
