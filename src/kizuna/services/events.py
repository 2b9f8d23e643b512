"""System events: facts Kizuna records about a customer so journeys can react.

Feature areas call :func:`record_event` (points expiring, tier changed,
detractor answered, referral rewarded, intent surge, …). Each event lands in
the same ``events`` table as the shop's behaviour events, so a journey
triggers on it with ``trigger: {event: <type>}``. The ``external_id`` is the
idempotency key: recording the same fact twice (a retry, a re-run of a
scheduled job) keeps one row, so it never starts two journey runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain.journeys import EVENT_TYPE
from kizuna.store import tables as t


def record_event(
    conn: sa.Connection,
    *,
    key: str,
    customer_id: int,
    type: str,
    occurred_at: datetime,
    properties: Mapping[str, Any] | None = None,
    topic: str | None = None,
) -> bool:
    """Insert one system event unless ``key`` was recorded before; True when new.

    Runs in the caller's transaction, so the event exists exactly when the
    change it announces was committed.
    """
    if not EVENT_TYPE.match(type):
        raise ValueError(f"event type {type!r} must be lower-case letters, digits, '_' or '.'")
    values = {
        "external_id": f"kizuna:{key}"[:128],
        "customer_id": customer_id,
        "type": type,
        "occurred_at": occurred_at,
        "topic": topic,
        "properties": dict(properties or {}),
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(t.events)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(t.events.c.id)
    )
    return conn.execute(stmt).first() is not None
