"""What the programme tells the rest of Kizuna: tier changes and points about to expire.

Each fact goes two ways, both in the transaction of the change it announces:
a row of ``programme_events`` (the outbox the signed webhooks deliver) and a
system event in ``events`` (via :func:`kizuna.services.events.record_event`)
that journeys trigger on with ``trigger: {event: tier_changed}`` or
``trigger: {event: points_expiring}``. Event keys make both idempotent: a
retried request or a re-run job records the same fact once, so a journey
starts once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.services.events import record_event
from kizuna.services.programme import config
from kizuna.services.programme.store import insert_many
from kizuna.services.programme.writes import Writes
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

TIER_CHANGED = "tier_changed"
POINTS_EXPIRING = "points_expiring"


def outbox(
    uow: UnitOfWork, topic: str, customer_id: int, payload: dict[str, Any], at: datetime
) -> None:
    """Queue a webhook event in the same transaction as its cause."""
    uow.conn.execute(
        sa.insert(pt.programme_events).values(
            topic=topic, customer_id=customer_id, payload=payload, created_at=at
        )
    )


def tier_changed(
    uow: UnitOfWork,
    customer_id: int,
    member_id: str,
    old: str | None,
    new: str | None,
    at: datetime,
    why: str | None = None,
    writes: Writes | None = None,
) -> None:
    """Announce a tier change: webhook ``tier.changed`` and journey event ``tier_changed``.

    With ``writes`` (an earn call's), both rows go into its single statement of
    writes instead of two statements of their own: the journey event is the
    row :func:`~kizuna.services.events.record_event` would write (same
    ``kizuna:`` key, skipped when the key exists).
    """
    payload: dict[str, Any] = {"member_id": member_id, "from": old, "to": new, "at": at.isoformat()}
    if why:
        payload["why"] = why
    key = f"tier_changed:{customer_id}:{at.isoformat()}:{old}:{new}"
    properties = {"old_tier": old, "new_tier": new, "reason": why or "qualification"}
    if writes is not None:
        writes.insert(
            pt.programme_events,
            [
                {
                    "topic": "tier.changed",
                    "customer_id": customer_id,
                    "payload": payload,
                    "created_at": at,
                }
            ],
        )
        writes.insert(
            t.events,
            [
                {
                    "external_id": f"kizuna:{key}"[:128],
                    "customer_id": customer_id,
                    "type": TIER_CHANGED,
                    "occurred_at": at,
                    "topic": "programme",
                    "properties": properties,
                }
            ],
            conflict=("external_id",),
        )
        return
    outbox(uow, "tier.changed", customer_id, payload, at)
    record_event(
        uow.conn,
        key=key,
        customer_id=customer_id,
        type=TIER_CHANGED,
        occurred_at=at,
        properties=properties,
        topic="programme",
    )


def tiers_changed(
    uow: UnitOfWork, changes: list[tuple[int, str, str | None, str | None]], at: datetime
) -> None:
    """Many tier changes (customer id, member id, old, new) at once: a batch's upgrades.

    The same two rows per change as :func:`tier_changed`, written with one
    multi-row statement each instead of two round trips per member. The
    journey events are the rows :func:`~kizuna.services.events.record_event`
    would write (same ``kizuna:`` key, same conflict rule), in bulk.
    """
    if not changes:
        return
    insert_many(
        uow,
        pt.programme_events,
        [
            {
                "topic": "tier.changed",
                "customer_id": cid,
                "created_at": at,
                "payload": {"member_id": member, "from": old, "to": new, "at": at.isoformat()},
            }
            for cid, member, old, new in changes
        ],
    )
    rows = [
        {
            "external_id": f"kizuna:tier_changed:{cid}:{at.isoformat()}:{old}:{new}"[:128],
            "customer_id": cid,
            "type": TIER_CHANGED,
            "occurred_at": at,
            "topic": "programme",
            "properties": {"old_tier": old, "new_tier": new, "reason": "qualification"},
        }
        for cid, _, old, new in changes
    ]
    insert_many(uow, t.events, rows, conflict=["external_id"])


def record_expiring(uow: UnitOfWork, now: datetime | None = None) -> int:
    """One ``points_expiring`` event per lot, ``[expiry] notify_days`` before it lapses.

    Scheduled work: runs with the other programme jobs. The key is the lot,
    so each lot is announced once however often the job runs; lots that a
    redemption emptied meanwhile are not announced at all. Returns how many
    events were recorded.
    """
    now = now or datetime.now(UTC)
    programme = config.active_programme(uow).programme
    days = programme.expiry_notify_days
    if days <= 0:
        return 0
    lt, ev = pt.point_lots.c, t.events.c
    key = sa.literal("kizuna:points_expiring:lot:") + sa.cast(lt.id, sa.String)
    q = (
        sa.select(lt.id, lt.customer_id, lt.remaining, lt.expires_at)
        .where(
            lt.state.in_(("pending", "available")),
            lt.remaining > 0,
            lt.expires_at > now,
            lt.expires_at <= now + timedelta(days=days),
            ~sa.exists().where(ev.external_id == key),
        )
        .order_by(lt.id)
    )
    recorded = 0
    for row in uow.conn.execute(q).all():
        left = row.expires_at - now
        recorded += record_event(
            uow.conn,
            key=f"points_expiring:lot:{row.id}",
            customer_id=row.customer_id,
            type=POINTS_EXPIRING,
            occurred_at=now,
            properties={
                "lot_id": row.id,
                "points": int(row.remaining),
                "expires_at": row.expires_at.isoformat(),
                "days_left": left.days,
                "point_name": programme.point_name,
            },
            topic="programme",
        )
    uow.commit()
    return recorded
