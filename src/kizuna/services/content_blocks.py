"""Personalised content blocks for "dates that matter" messages (birthdays, anniversaries).

A birthday journey's email shows the member's tier, the points they can
spend, the points about to expire and a few recommended products. Each block
is one read-only query on the connection the sender already holds, so
blocks cost nothing to a send that does not use them and never change what
they report on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.services.recommendations import Recommended, recommendations_for
from kizuna.store import programme_tables as pt

#: Lot states whose remaining points can still be spent or will become spendable.
LIVE_LOTS = ("pending", "available")


@dataclass(frozen=True)
class ExpiringPoints:
    """Points that expire within the window, and the first day any of them goes."""

    points: int
    first_expiry: datetime | None

    def __str__(self) -> str:
        return str(self.points)


@dataclass(frozen=True)
class ContentBlocks:
    """Everything a "dates that matter" message may show about one member."""

    tier: str | None
    points_available: int
    points_expiring: ExpiringPoints
    recommended: list[Recommended] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "points_available": self.points_available,
            "points_expiring": self.points_expiring.points,
            "first_expiry": self.points_expiring.first_expiry,
            "recommended": [r.to_dict() for r in self.recommended],
        }


def tier(conn: sa.Connection, customer_id: int) -> str | None:
    """The member's current tier, or None for a customer who is not a member."""
    a = pt.point_accounts.c
    return conn.execute(sa.select(a.tier).where(a.customer_id == customer_id)).scalar_one_or_none()


def points_available(conn: sa.Connection, customer_id: int) -> int:
    """Points the member can spend now (the account's cached balance)."""
    a = pt.point_accounts.c
    value = conn.execute(
        sa.select(a.available).where(a.customer_id == customer_id)
    ).scalar_one_or_none()
    return int(value or 0)


def points_expiring(
    conn: sa.Connection, customer_id: int, now: datetime, within_days: int = 30
) -> ExpiringPoints:
    """Remaining points of live lots that expire within ``within_days`` of ``now``."""
    lt = pt.point_lots.c
    until = now + timedelta(days=within_days)
    points, first = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(lt.remaining), 0), sa.func.min(lt.expires_at)).where(
            lt.customer_id == customer_id,
            lt.state.in_(LIVE_LOTS),
            lt.remaining > 0,
            lt.expires_at.is_not(None),
            lt.expires_at > now,
            lt.expires_at <= until,
        )
    ).one()
    if isinstance(first, str):
        first = datetime.fromisoformat(first)
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return ExpiringPoints(points=int(points), first_expiry=first)


def content_blocks(
    conn: sa.Connection,
    customer_id: int,
    now: datetime | None = None,
    *,
    expiring_within_days: int = 30,
    recommended: int = 3,
) -> ContentBlocks:
    """All blocks for one member, read in one go."""
    now = now or datetime.now(UTC)
    return ContentBlocks(
        tier=tier(conn, customer_id),
        points_available=points_available(conn, customer_id),
        points_expiring=points_expiring(conn, customer_id, now, expiring_within_days),
        recommended=recommendations_for(conn, customer_id, recommended),
    )
