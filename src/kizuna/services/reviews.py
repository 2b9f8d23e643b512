"""Reviews and UGC: ingest, moderation (pending/approved/rejected with reason), rewards.

Imported reviews (the ``reviews`` import kind) and reviews sent through the
API or CLI land in the same canonical ``reviews`` table; a review without a
``review_moderation`` row is pending. Approving a review grants
``review_reward_points`` through the programme's
:func:`~kizuna.services.programme.actions.adjust` under the idempotency key
``review:<review id>`` — once per review, however often it is re-moderated —
unless the author already earned ``review_reward_cap_per_month`` rewards
this calendar month (the review is still approved; the note says why no
points were given). Taking an approved review down later keeps its points:
the customer did nothing wrong after the fact, and clawing back would
surprise them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.config import Settings
from kizuna.domain import vocabulary as v
from kizuna.errors import NotFound, ValidationError
from kizuna.services.events import record_event
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.idempotency import Idem
from kizuna.services.programme.journey_effects import JoinedUnitOfWork
from kizuna.services.referrals import take_writer
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import tables as t

STATUSES = ("pending", "approved", "rejected")
MAX_BODY = 20_000
_r, _m, _cust = t.reviews.c, at.review_moderation.c, t.customers.c


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


@dataclass(frozen=True)
class NewReview:
    review_id: str
    member_id: str
    rating: int | None = None
    body: str | None = None
    title: str | None = None
    kind: str = "review"
    channel: str | None = None
    url: str | None = None
    language: str | None = None
    product_id: str | None = None
    posted_at: datetime | None = None


def _check(cmd: NewReview) -> None:
    if not cmd.review_id or len(cmd.review_id) > 128:
        raise ValidationError("review_id must be 1 to 128 characters (your id of the review)")
    if cmd.kind not in v.REVIEW_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(v.REVIEW_KINDS)}")
    if cmd.rating is not None and not 1 <= cmd.rating <= 5:
        raise ValidationError("rating must be 1 to 5 stars")
    if cmd.rating is None and not (cmd.body or cmd.url):
        raise ValidationError("a review needs a rating, a text or a link")
    if cmd.body is not None and len(cmd.body) > MAX_BODY:
        raise ValidationError(f"text is longer than {MAX_BODY} characters")
    if cmd.language is not None and cmd.language not in v.LANGUAGES:
        raise ValidationError(f"language must be one of {', '.join(v.LANGUAGES)}")
    if cmd.url is not None and not cmd.url.startswith(("http://", "https://")):
        raise ValidationError("url must start with http:// or https://")
    if cmd.posted_at is not None and cmd.posted_at.tzinfo is None:
        raise ValidationError("posted_at: give the time with a timezone offset")


def submit(
    uow: UnitOfWork, cmd: NewReview, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Store a review as pending (201); the same review id again returns it (200)."""
    now = now or datetime.now(UTC)
    _check(cmd)
    with uow:
        conn = uow.conn
        take_writer(conn)
        if conn.execute(sa.select(_r.id).where(_r.external_id == cmd.review_id)).first():
            return 200, review(conn, cmd.review_id)
        cid = conn.execute(sa.select(_cust.id).where(_cust.external_id == cmd.member_id)).scalar()
        if cid is None:
            raise NotFound(f"unknown member {cmd.member_id!r}: import or create the customer first")
        product = None
        if cmd.product_id is not None:
            product = conn.execute(
                sa.select(t.products.c.id).where(t.products.c.external_id == cmd.product_id)
            ).scalar()
            if product is None:
                raise NotFound(f"unknown product {cmd.product_id!r}")
        rid = conn.execute(
            sa.insert(t.reviews)
            .values(
                external_id=cmd.review_id,
                customer_id=cid,
                product_id=product,
                kind=cmd.kind,
                rating=cmd.rating,
                title=cmd.title,
                body=cmd.body,
                language=cmd.language,
                channel=cmd.channel,
                url=cmd.url,
                posted_at=cmd.posted_at or now,
            )
            .returning(_r.id)
        ).scalar_one()
        conn.execute(
            sa.insert(at.review_moderation).values(review_id=rid, customer_id=cid, status="pending")
        )
        body = review(conn, cmd.review_id)
        uow.commit()
    return 201, body


def review(conn: sa.Connection, review_id: str) -> dict[str, Any]:
    rows = _rows(conn, sa.and_(_r.external_id == review_id), limit=1)
    if not rows:
        raise NotFound(f"no review {review_id!r}")
    return rows[0]


def _rows(conn: sa.Connection, where: Any, limit: int = 500) -> list[dict[str, Any]]:
    status = sa.func.coalesce(_m.status, "pending")
    rows = conn.execute(
        sa.select(
            _r.external_id,
            _r.kind,
            _r.rating,
            _r.title,
            _r.body,
            _r.channel,
            _r.url,
            _r.language,
            _r.posted_at,
            _cust.external_id.label("member"),
            _cust.name,
            status.label("status"),
            _m.reason,
            _m.decided_at,
            _m.decided_by,
            _m.points,
            _m.reward_note,
        )
        .select_from(
            t.reviews.join(t.customers, _cust.id == _r.customer_id).outerjoin(
                at.review_moderation, _m.review_id == _r.id
            )
        )
        .where(where)
        .order_by(_r.posted_at.desc(), _r.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "review_id": r.external_id,
            "member_id": r.member,
            "name": r.name,
            "kind": r.kind,
            "rating": r.rating,
            "title": r.title,
            "body": r.body,
            "channel": r.channel,
            "url": r.url,
            "language": r.language,
            "posted_at": r.posted_at.isoformat(),
            "status": r.status,
            "reason": r.reason,
            "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "decided_by": r.decided_by,
            "points": int(r.points or 0),
            "reward_note": r.reward_note,
        }
        for r in rows
    ]


def queue(
    conn: sa.Connection, status: str | None = "pending", limit: int = 500
) -> list[dict[str, Any]]:
    """Reviews by moderation status (None: all), newest first."""
    if status is None:
        return _rows(conn, sa.true(), limit)
    if status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}")
    return _rows(conn, sa.func.coalesce(_m.status, "pending") == status, limit)


def _month_start(settings: Settings, now: datetime) -> datetime:
    local = now.astimezone(settings.tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class Moderate:
    review_id: str
    status: str
    actor: str
    reason: str | None = None


def moderate(uow: UnitOfWork, cmd: Moderate, now: datetime | None = None) -> dict[str, Any]:
    """Approve or reject (with a reason); an approval pays the reward rule once per review."""
    now = now or datetime.now(UTC)
    if cmd.status not in ("approved", "rejected"):
        raise ValidationError("decide approved or rejected")
    reason = (cmd.reason or "").strip()
    if cmd.status == "rejected" and not reason:
        raise ValidationError("say why the review is rejected (reason); the author may ask")
    if not cmd.actor.strip():
        raise ValidationError("say who moderates (actor)")
    settings = uow.settings
    with uow:
        conn = uow.conn
        take_writer(conn)
        found = conn.execute(
            sa.select(_r.id, _r.customer_id, _r.kind).where(_r.external_id == cmd.review_id)
        ).first()
        if found is None:
            raise NotFound(f"no review {cmd.review_id!r}")
        conn.execute(  # imported reviews get their moderation row on first decision
            _insert(conn, at.review_moderation)
            .values(review_id=found.id, customer_id=found.customer_id, status="pending")
            .on_conflict_do_nothing()
        )
        row = conn.execute(
            sa.update(at.review_moderation)
            .where(_m.review_id == found.id)
            .values(lock_seq=_m.lock_seq + 1)
            .returning(_m.status, _m.reason, _m.points, _m.reward_note)
        ).one()
        if row.status == cmd.status and (row.reason or "") == reason:
            return review(conn, cmd.review_id)  # a retry of the same decision
        values: dict[str, Any] = {
            "status": cmd.status,
            "reason": reason or None,
            "decided_at": now,
            "decided_by": cmd.actor.strip()[:200],
        }
        if cmd.status == "approved" and not row.points and row.reward_note is None:
            values |= _reward(
                uow, settings, int(found.id), int(found.customer_id), cmd.review_id, now
            )
        conn.execute(sa.update(at.review_moderation).where(_m.review_id == found.id).values(values))
        record_event(
            conn,
            key=f"review:{found.id}:{cmd.status}:{now.isoformat()}",
            customer_id=int(found.customer_id),
            type=f"review_{cmd.status}",
            occurred_at=now,
            properties={
                "review_id": cmd.review_id,
                "kind": found.kind,
                "points": values.get("points", 0),
            },
        )
        body = review(conn, cmd.review_id)
        uow.commit()
    return body


def _reward(
    uow: UnitOfWork, settings: Settings, rid: int, customer_id: int, review_id: str, now: datetime
) -> dict[str, Any]:
    """The points of a first approval, or the note saying why there are none."""
    conn = uow.conn
    # The author's other moderation rows serialise on this lock (the cap is per author).
    conn.execute(
        sa.update(at.review_moderation)
        .where(_m.customer_id == customer_id)
        .values(lock_seq=_m.lock_seq + 1)
    )
    earned = conn.execute(
        sa.select(sa.func.count()).where(
            _m.customer_id == customer_id,
            _m.points > 0,
            _m.decided_at >= _month_start(settings, now),
        )
    ).scalar_one()
    if earned >= settings.review_reward_cap_per_month:
        return {"reward_note": f"cap: {earned} rewarded reviews this month"}
    points = settings.review_reward_points
    member = conn.execute(sa.select(_cust.external_id).where(_cust.id == customer_id)).scalar_one()
    key = f"review:{rid}"
    idem = Idem(key, hashlib.sha256(f"{key} {points}".encode()).hexdigest())
    adjust(
        JoinedUnitOfWork(conn, settings),
        Adjust(str(member), points, f"approved review {review_id}"[:500], "review", idem),
        now,
    )
    return {"points": points, "reward_note": "rewarded"}
