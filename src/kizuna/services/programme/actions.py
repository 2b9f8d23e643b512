"""Points for actions (sign-up, review, referral, ...) and manual adjustments by staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain import schedule
from kizuna.domain.programme import ACTIONS
from kizuna.errors import Conflict, ValidationError
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.members import balance_dict, open_member
from kizuna.services.programme.store import MAX_ID, save_book
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

MAX_ADJUST = 10**9


@dataclass(frozen=True)
class RewardAction:
    """Award the programme's points for ``action``; ``reference`` makes it once-only."""

    member_id: str
    action: str
    reference: str
    idem: Idem | None = None


@dataclass(frozen=True)
class Adjust:
    member_id: str
    points: int
    reason: str
    actor: str
    idem: Idem | None = None


def reward_action(
    uow: UnitOfWork, cmd: RewardAction, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    now = now or datetime.now(UTC)
    if cmd.action not in ACTIONS and not cmd.action.startswith("custom:"):
        raise ValidationError(
            f"unknown action {cmd.action!r}; use one of {', '.join(ACTIONS)} or custom:<name>"
        )
    if not cmd.reference or len(cmd.reference) > MAX_ID:
        raise ValidationError(f"reference must be 1 to {MAX_ID} characters (e.g. the review id)")
    opened = open_member(uow, None, cmd.member_id, now)
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    programme = opened.active.programme
    points = programme.actions.get(cmd.action)
    if points is None:
        raise ValidationError(
            f"the programme does not reward {cmd.action!r}; add it under [actions] in programme.toml"
        )
    source = f"action:{cmd.action}:{cmd.reference}"
    if cmd.action == "signup" and programme.automatic_signup:
        # Granted at enrolment, once; an explicit call can only find it done.
        if not opened.account.created:
            raise Conflict("signup points are granted automatically at enrolment, and were")
        save_book(uow, opened.account, opened.book, opened.active.version, activity_at=now)
        body = {
            "member_id": cmd.member_id,
            "action": cmd.action,
            "points": points,
            "state": opened.book.lots[-1].state,
            "balance": balance_dict(opened.book.balance),
        }
        remember(uow, cmd.idem, 201, body)
        uow.commit()
        return 201, body
    lots = pt.point_lots.c
    if uow.conn.execute(
        sa.select(lots.id)
        .where(lots.customer_id == opened.account.customer_id, lots.source == source[:200])
        .limit(1)
    ).first():
        raise Conflict(f"{cmd.action} {cmd.reference} was already rewarded for this member")
    lot = opened.book.earn(
        points,
        at=now,
        available_at=schedule.available_at(programme, now),
        expires_at=schedule.expires_at(programme, now),
        source=source,
        reason=f"reward for {cmd.action} ({cmd.reference})",
    )
    save_book(uow, opened.account, opened.book, opened.active.version, activity_at=now)
    body = {
        "member_id": cmd.member_id,
        "action": cmd.action,
        "points": points,
        "state": lot.state,
        "balance": balance_dict(opened.book.balance),
    }
    remember(uow, cmd.idem, 201, body)
    uow.commit()
    return 201, body


def adjust(uow: UnitOfWork, cmd: Adjust, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """A manual credit or debit with its reason and the person who made it."""
    now = now or datetime.now(UTC)
    if isinstance(cmd.points, bool) or abs(cmd.points) > MAX_ADJUST:
        raise ValidationError(
            f"an adjustment must be between -{MAX_ADJUST} and {MAX_ADJUST} points"
        )
    opened = open_member(uow, None, cmd.member_id, now)
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    programme = opened.active.programme
    opened.book.adjust(
        cmd.points,
        at=now,
        actor=cmd.actor,
        reason=cmd.reason,
        expires_at=schedule.expires_at(programme, now),
        source=f"adjust:{cmd.actor}"[:200],
    )
    save_book(uow, opened.account, opened.book, opened.active.version)
    body = {
        "member_id": cmd.member_id,
        "points": cmd.points,
        "reason": cmd.reason,
        "actor": cmd.actor,
        "balance": balance_dict(opened.book.balance),
    }
    remember(uow, cmd.idem, 201, body)
    uow.commit()
    return 201, body
