"""Signed webhooks: deliver queued programme events (tier changed, points expiring, reward redeemed).

Events are written to ``programme_events`` in the same transaction as their
cause (an outbox), so none is lost or sent for something that rolled back.
Each POST carries ``Kizuna-Signature: t=<unix time>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<body>"`` with the shared secret; receivers recompute
it and reject stale timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.services.programme import config
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

Post = Callable[[str, bytes, dict[str, str]], int]
log = logging.getLogger(__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the signature and refuse old timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)


class DeliveryError(OSError):
    """The receiver could not be reached or did not answer 2xx."""


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    try:
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


#: Failed attempts before an event is set aside as failed (about a day of backoff).
MAX_ATTEMPTS = 12
#: Backoff after the n-th failure: 1, 2, 4, ... minutes, at most 6 hours.
MAX_BACKOFF = timedelta(hours=6)


def backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def deliver(
    uow: UnitOfWork,
    url: str,
    secret: str,
    *,
    limit: int = 500,
    post: Post = _http_post,
    now: datetime | None = None,
) -> int:
    """Send undelivered events in order; returns how many were delivered.

    The retry worker: a failure (no answer, or not 2xx) records the error and
    schedules the event's next attempt with exponential backoff, and the run
    stops there, so events reach the receiver in the order they happened.
    Later runs (the scheduled jobs, every 15 minutes, or this command) wait
    until the backoff is over; after :data:`MAX_ATTEMPTS` failures the event
    is set aside as failed (``failed_at``) so it cannot block the rest for
    ever, and ``retry_failed`` queues it again.
    """
    now = now or datetime.now(UTC)
    e = pt.programme_events.c
    q = (
        sa.select(pt.programme_events)
        .where(e.delivered_at.is_(None), e.failed_at.is_(None))
        .order_by(e.id)
        .limit(limit)
    )
    if uow.dialect == "postgresql":
        q = q.with_for_update(skip_locked=True)
    sent = 0
    for row in uow.conn.execute(q).all():
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            break  # the oldest waits out its backoff; keep the order
        body = json.dumps(
            {
                "id": row.id,
                "topic": row.topic,
                "created_at": row.created_at.isoformat(),
                "data": row.payload,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Kizuna-Signature": sign(secret, int(time.time()), body),
            "Kizuna-Event": row.topic,
            "Kizuna-Delivery-Attempt": str(row.attempts + 1),
        }
        error = None
        try:
            status = post(url, body, headers)
            if not 200 <= status < 300:
                error = f"receiver answered HTTP {status}"
        except OSError as exc:
            error = str(exc) or type(exc).__name__
        if error is not None:
            attempts = row.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "last_error": error[:500],
                "next_attempt_at": now + backoff(attempts),
            }
            if attempts >= MAX_ATTEMPTS:
                values["failed_at"] = now
            uow.conn.execute(sa.update(pt.programme_events).where(e.id == row.id).values(**values))
            log.warning(
                "programme webhook %s (%s) failed, attempt %d: %s",
                row.id,
                row.topic,
                attempts,
                error[:200],
            )
            break
        uow.conn.execute(
            sa.update(pt.programme_events)
            .where(e.id == row.id)
            .values(delivered_at=datetime.now(UTC))
        )
        sent += 1
    uow.commit()
    return sent


def deliver_configured(uow: UnitOfWork, now: datetime | None = None) -> int:
    """The scheduled delivery: to ``programme_webhook_url``, if one is set."""
    settings = uow.settings
    if not settings.programme_webhook_url:
        return 0
    if not settings.programme_webhook_secret:
        log.warning("programme_webhook_url is set but programme_webhook_secret is empty; not sent")
        return 0
    return deliver(uow, settings.programme_webhook_url, settings.programme_webhook_secret, now=now)


def retry_failed(uow: UnitOfWork) -> int:
    """Queue the events set aside as failed again (after the receiver is fixed)."""
    e = pt.programme_events.c
    res = uow.conn.execute(
        sa.update(pt.programme_events)
        .where(e.failed_at.is_not(None), e.delivered_at.is_(None))
        .values(failed_at=None, attempts=0, next_attempt_at=None)
    )
    uow.commit()
    return int(res.rowcount or 0)


def queue_expiring_soon(uow: UnitOfWork, now: datetime | None = None, days: int = 30) -> int:
    """One ``points.expiring`` event per member with points lapsing within ``days``, once per window."""
    now = now or datetime.now(UTC)
    config.active_programme(uow)
    lt, e = pt.point_lots.c, pt.programme_events.c
    horizon = now + timedelta(days=days)
    notified = sa.select(e.customer_id).where(
        e.topic == "points.expiring", e.created_at > now - timedelta(days=days)
    )
    q = (
        sa.select(
            lt.customer_id,
            sa.func.sum(lt.remaining).label("points"),
            sa.func.min(lt.expires_at).label("first"),
        )
        .where(
            lt.state.in_(("pending", "available")),
            lt.remaining > 0,
            lt.expires_at > now,
            lt.expires_at <= horizon,
        )
        .where(lt.customer_id.not_in(notified))
        .group_by(lt.customer_id)
    )
    rows = uow.conn.execute(q).all()
    if not rows:
        return 0
    from kizuna.store import tables as t

    ext = dict(
        (r.id, r.external_id)
        for r in uow.conn.execute(
            sa.select(t.customers.c.id, t.customers.c.external_id).where(
                t.customers.c.id.in_([r.customer_id for r in rows])
            )
        )
    )
    events: list[dict[str, Any]] = [
        {
            "topic": "points.expiring",
            "customer_id": r.customer_id,
            "created_at": now,
            "payload": {
                "member_id": ext[r.customer_id],
                "points": int(r.points),
                "first_expiry": r.first.isoformat(),
            },
        }
        for r in rows
    ]
    uow.conn.execute(sa.insert(pt.programme_events), events)
    uow.commit()
    return len(events)
