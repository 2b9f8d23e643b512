"""Points and coupons given by a journey step, inside the step's own transaction.

The journey runner commits a step, its send-ledger row and its effect
together. These functions therefore run the ordinary programme handlers on
the runner's connection through a :class:`JoinedUnitOfWork`, whose commit is
the runner's: a crash before the step commits leaves no points and no coupon,
and a retry of the step finds the programme's idempotency key
(``journey:<step key>``) and returns the first result instead of a second
grant. The member's row lock is taken first, as in every programme write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.services.programme import coupons
from kizuna.services.programme.actions import Adjust, RewardAction, adjust, reward_action
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.store import lock_member
from kizuna.services.uow import UnitOfWork


class JoinedUnitOfWork(UnitOfWork):
    """A unit of work inside a transaction someone else owns and commits."""

    def __init__(self, conn: sa.Connection, settings: Settings) -> None:
        super().__init__(conn.engine, settings)
        self._conn = conn

    def __enter__(self) -> JoinedUnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        """The owner of the transaction commits the effect together with its own change."""

    def rollback(self) -> None:
        raise RuntimeError("a joined unit of work cannot roll back its owner's transaction")


def journey_idem(step_key: str, what: str) -> Idem:
    """The programme idempotency key of a journey step (the step key is unique per run)."""
    digest = hashlib.sha256(f"journey {what} {step_key}".encode()).hexdigest()
    return Idem(f"journey:{step_key}", digest)


@dataclass(frozen=True)
class JourneyGrant:
    """Points for a member from a journey: a programme action reward or a manual grant."""

    member_id: str
    step_key: str
    actor: str
    reason: str
    points: int | None = None
    reward: str | None = None


def grant_points(
    conn: sa.Connection, settings: Settings, cmd: JourneyGrant, now: datetime
) -> dict[str, Any]:
    """Award ``cmd.reward`` (reference = the step key) or credit ``cmd.points``; once per step."""
    uow = JoinedUnitOfWork(conn, settings)
    idem = journey_idem(cmd.step_key, "grant_points")
    if cmd.reward is not None:
        _, body = reward_action(
            uow, RewardAction(cmd.member_id, cmd.reward, cmd.step_key, idem), now
        )
    else:
        assert cmd.points is not None
        _, body = adjust(uow, Adjust(cmd.member_id, cmd.points, cmd.reason, cmd.actor, idem), now)
    return body


@dataclass(frozen=True)
class JourneyCoupon:
    """One single-use coupon bound to the member, as a journey step defines it."""

    member_id: str
    customer_id: int
    step_key: str
    batch: str
    kind: str
    value: int
    min_spend: int = 0
    valid_days: int | None = None
    item: str | None = None
    prefix: str = ""


def issue_coupon(
    conn: sa.Connection, settings: Settings, cmd: JourneyCoupon, now: datetime
) -> dict[str, Any]:
    """Issue the member's coupon under the member's lock; a retry returns the same code."""
    uow = JoinedUnitOfWork(conn, settings)
    lock_member(uow, cmd.member_id, now)
    idem = journey_idem(cmd.step_key, "issue_coupon")
    stored = replay(uow, idem)
    if stored is not None:
        return stored.body
    valid_until = now + timedelta(days=cmd.valid_days) if cmd.valid_days else None
    (code,) = coupons.generate(
        uow,
        count=1,
        kind=cmd.kind,
        value=cmd.value,
        batch=cmd.batch[:100],
        min_spend=cmd.min_spend,
        valid_from=now,
        valid_until=valid_until,
        item=cmd.item,
        prefix=cmd.prefix,
        customer_id=cmd.customer_id,
    )
    body = {
        "member_id": cmd.member_id,
        "code": code,
        "kind": cmd.kind,
        "value": cmd.value,
        "valid_until": valid_until.isoformat() if valid_until else None,
    }
    remember(uow, idem, 201, body)
    return body
