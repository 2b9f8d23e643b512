"""Referrals: codes, attribution of the referee's first order, and settlement.

A referral goes ``pending`` (code captured) → ``qualified`` (the referee's
first order is known; ``due_at`` = that order + the return window) →
``rewarded`` or ``rejected`` (with reasons). Settlement runs per referral in
its own transaction that first bumps the referral's ``lock_seq``, then the
referrer's code row, then grants both sides through the programme's
:func:`~kizuna.services.programme.actions.adjust` with the idempotency keys
``referral:<id>:referrer`` / ``referral:<id>:referee``. The status change,
the points and the system events therefore commit together or not at all:
retries and concurrent ``kizuna referrals settle`` runs reward once.

Codes reach us three ways: the API (``POST /v1/referrals``, at sign-up or
checkout), the people import's ``attr.referral_code`` column (kept in
``customers.attributes``), and the orders import's ``coupon_code`` column
when it holds a referral code. The last two are picked up by the settle job.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.config import Settings
from kizuna.domain import referrals as rules
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.events import record_event
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.idempotency import Idem
from kizuna.services.programme.journey_effects import JoinedUnitOfWork
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

_r, _d, _c, _cust = t.referrals.c, at.referral_details.c, at.referral_codes.c, t.customers.c


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def take_writer(conn: sa.Connection) -> None:
    """Make a write the transaction's first statement (see advocacy_tables: SQLite's writer lock)."""
    conn.execute(sa.update(at.referral_codes).where(sa.false()).values(lock_seq=_c.lock_seq))


_KEYS: dict[tuple[str, str], bytes] = {}


def fingerprint_key(settings: Settings) -> bytes:
    """The HMAC key of identity fingerprints, derived from the workspace secret (cached)."""
    from kizuna.automation.unsubscribe import _workspace_secret

    cache = (str(settings.workspace), str.__str__(settings.secret_key))
    if cache not in _KEYS:
        _KEYS[cache] = hmac.new(
            _workspace_secret(settings), b"kizuna-referral-fingerprint-v1", hashlib.sha256
        ).digest()
    return _KEYS[cache]


def _customer(conn: sa.Connection, member_id: str) -> Any:
    """The (id, external_id) row of a member; NotFound names the id."""
    row = conn.execute(
        sa.select(_cust.id, _cust.external_id).where(_cust.external_id == member_id)
    ).first()
    if row is None:
        raise NotFound(f"unknown member {member_id!r}: import or create the customer first")
    return row


# -- codes ------------------------------------------------------------------


def ensure_code(conn: sa.Connection, customer_id: int, now: datetime) -> str:
    """The customer's code, created on first use; stable afterwards."""
    for _ in range(8):
        found = conn.execute(sa.select(_c.code).where(_c.customer_id == customer_id)).scalar()
        if found is not None:
            return str(found)
        stmt = _insert(conn, at.referral_codes).values(
            customer_id=customer_id, code=rules.new_code(), created_at=now
        )
        conn.execute(stmt.on_conflict_do_nothing())
    raise Conflict("could not create a unique referral code; try again")


def code_exists(conn: sa.Connection, code: str) -> bool:
    return conn.execute(sa.select(_c.id).where(_c.code == code)).first() is not None


def link_for(settings: Settings, code: str) -> str:
    return rules.referral_link(settings.referral_link_template, code, settings.public_url)


def code_for(uow: UnitOfWork, member_id: str, now: datetime | None = None) -> dict[str, str]:
    """The member's referral code and link (created on the first request)."""
    now = now or datetime.now(UTC)
    with uow:
        take_writer(uow.conn)
        cust = _customer(uow.conn, member_id)
        code = ensure_code(uow.conn, int(cust.id), now)
        uow.commit()
    return {"member_id": member_id, "code": code, "link": link_for(uow.settings, code)}


# -- capture ------------------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    """The referee used ``code`` (at sign-up or at their order ``order_id``)."""

    member_id: str
    code: str
    at: datetime | None = None
    order_id: str | None = None
    source: str = "api"


_referrer = sa.alias(t.customers, "referrer")
_referee = sa.alias(t.customers, "referee")
_BODY = sa.select(
    _r.id,
    _r.code,
    _r.status,
    _r.referred_at,
    _referrer.c.external_id.label("referrer"),
    _referee.c.external_id.label("referee"),
    _d.due_at,
    _d.reasons,
    _d.referrer_points,
    _d.referee_points,
    _d.settled_at,
    _d.source,
).select_from(
    t.referrals.join(_referrer, _referrer.c.id == _r.referrer_id)
    .outerjoin(_referee, _referee.c.id == _r.referee_id)
    .outerjoin(at.referral_details, _d.referral_id == _r.id)
)


def _as_body(row: Any) -> dict[str, Any]:
    return {
        "referral_id": row.id,
        "referrer_id": row.referrer,
        "referee_id": row.referee,
        "code": row.code,
        "status": row.status,
        "source": row.source,
        "referred_at": row.referred_at.isoformat(),
        "due_at": row.due_at.isoformat() if row.due_at else None,
        "reasons": list(row.reasons or []),
        "referrer_points": int(row.referrer_points or 0),
        "referee_points": int(row.referee_points or 0),
        "settled_at": row.settled_at.isoformat() if row.settled_at else None,
    }


def _referral_body(conn: sa.Connection, referral_id: int) -> dict[str, Any]:
    return _as_body(conn.execute(_BODY.where(_r.id == referral_id)).one())


def _capture(conn: sa.Connection, cmd: Capture, referee_id: int, now: datetime) -> tuple[int, int]:
    """Insert the referral (once per referee); returns (status, referral id)."""
    code = rules.normalise_code(cmd.code)
    referrer_id = conn.execute(sa.select(_c.customer_id).where(_c.code == code)).scalar()
    if referrer_id is None:
        raise NotFound(f"unknown referral code {cmd.code!r}; check it with the referrer")
    existing = conn.execute(
        sa.select(_r.id, _r.referrer_id).where(_r.referee_id == referee_id)
    ).first()
    if existing is not None:
        if int(existing.referrer_id) != int(referrer_id):
            raise Conflict(
                f"member {cmd.member_id} was already referred by another code; "
                "a customer is referred once"
            )
        return 200, int(existing.id)
    order_id = None
    if cmd.order_id is not None:
        order = conn.execute(
            sa.select(t.orders.c.id, t.orders.c.customer_id).where(
                t.orders.c.external_id == cmd.order_id
            )
        ).first()
        if order is None or int(order.customer_id) != referee_id:
            raise ValidationError(
                f"order {cmd.order_id!r} is not an order of member {cmd.member_id}; "
                "record the order first or leave order_id out"
            )
        order_id = int(order.id)
    referred_at = cmd.at or now
    stmt = (
        _insert(conn, t.referrals)
        .values(
            external_id=f"kizuna:referee:{referee_id}",
            referrer_id=referrer_id,
            referee_id=referee_id,
            code=code,
            referred_at=referred_at,
            status="pending",
        )
        .on_conflict_do_nothing()
        .returning(_r.id)
    )
    new_id = conn.execute(stmt).scalar()
    if new_id is None:  # a concurrent capture of the same referee won
        return 200, int(
            conn.execute(sa.select(_r.id).where(_r.referee_id == referee_id)).scalar_one()
        )
    conn.execute(
        sa.insert(at.referral_details).values(
            referral_id=new_id,
            customer_id=referrer_id,
            order_id=order_id,
            source=cmd.source,
            reasons=[],
        )
    )
    record_event(
        conn,
        key=f"referral:{new_id}:captured",
        customer_id=int(referrer_id),
        type="referral_captured",
        occurred_at=referred_at,
        properties={"referral_id": int(new_id), "code": code},
    )
    return 201, int(new_id)


def capture(
    uow: UnitOfWork, cmd: Capture, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Record that ``cmd.member_id`` came with ``cmd.code``; repeating it is harmless."""
    now = now or datetime.now(UTC)
    if cmd.at is not None and cmd.at.tzinfo is None:
        raise ValidationError("at: give the time with a timezone offset")
    with uow:
        take_writer(uow.conn)
        referee = _customer(uow.conn, cmd.member_id)
        status, referral_id = _capture(uow.conn, cmd, int(referee.id), now)
        body = _referral_body(uow.conn, referral_id)
        uow.commit()
    return status, body


# -- settlement ----------------------------------------------------------------


@dataclass
class SettleReport:
    captured: int = 0
    qualified: int = 0
    rewarded: int = 0
    rejected: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    def total(self) -> int:
        return self.captured + self.qualified + self.rewarded + self.rejected


def _sweep(conn: sa.Connection, now: datetime) -> int:
    """Capture codes that arrived by import: ``attr.referral_code`` and order coupon codes."""
    captured = 0
    taken = sa.select(_r.referee_id).where(_r.referee_id.is_not(None))
    attr = _cust.attributes["referral_code"].as_string()
    rows = conn.execute(
        sa.select(_cust.id, _cust.external_id, attr.label("code"), _cust.signup_at).where(
            attr.is_not(None), _cust.id.not_in(taken)
        )
    ).all()
    for row in rows:
        cmd = Capture(row.external_id, str(row.code), row.signup_at, source="signup_attribute")
        try:
            captured += _capture(conn, cmd, int(row.id), now)[0] == 201
        except (NotFound, Conflict, ValidationError):
            continue
    o = t.orders.c
    first_coupon = conn.execute(
        sa.select(
            o.customer_id,
            o.external_id,
            o.ordered_at,
            o.coupon_code,
            _cust.external_id.label("member"),
        )
        .select_from(t.orders.join(t.customers, _cust.id == o.customer_id))
        .where(o.coupon_code.in_(sa.select(_c.code)), o.customer_id.not_in(taken))
        .order_by(o.ordered_at)
    ).all()
    for order in first_coupon:
        cmd = Capture(
            order.member,
            str(order.coupon_code),
            order.ordered_at,
            order.external_id,
            "order_coupon",
        )
        try:
            captured += _capture(conn, cmd, int(order.customer_id), now)[0] == 201
        except (NotFound, Conflict, ValidationError):
            continue
    # Referrals imported as rows of the referrals kind get their details here.
    missing = conn.execute(
        sa.select(_r.id, _r.referrer_id).where(
            _r.id.not_in(sa.select(_d.referral_id)), _r.status == "pending"
        )
    ).all()
    for ref in missing:
        conn.execute(
            _insert(conn, at.referral_details)
            .values(referral_id=ref.id, customer_id=ref.referrer_id, source="import", reasons=[])
            .on_conflict_do_nothing()
        )
    return captured


_o = t.orders.c
_FIRST_ORDER = (
    sa.select(_o.id)
    .where(_o.customer_id == _r.referee_id)
    .order_by(_o.ordered_at, _o.id)
    .limit(1)
    .correlate(t.referrals)
    .scalar_subquery()
)
_PENDING = (
    sa.select(_r.id, sa.func.coalesce(_d.order_id, _FIRST_ORDER).label("order_id"))
    .select_from(t.referrals.join(at.referral_details, _d.referral_id == _r.id))
    .where(_r.status == "pending", _r.referee_id.is_not(None))
)
_SET_DUE = (
    sa.update(at.referral_details)
    .where(_d.referral_id == sa.bindparam("rid"))
    .values(order_id=sa.bindparam("oid"), due_at=sa.bindparam("due"))
)
CHUNK = 5000


def _qualify(conn: sa.Connection, settings: Settings) -> int:
    """Attach each pending referral's first order and set when it falls due (set-wise)."""
    found = [(int(r.id), int(r.order_id)) for r in conn.execute(_PENDING) if r.order_id is not None]
    for i in range(0, len(found), CHUNK):
        part = found[i : i + CHUNK]
        when = dict(
            conn.execute(
                sa.select(_o.id, _o.ordered_at).where(_o.id.in_([oid for _, oid in part]))
            ).all()
        )
        window = settings.referral_return_window_days
        conn.execute(
            _SET_DUE,
            [{"rid": rid, "oid": oid, "due": rules.due_at(when[oid], window)} for rid, oid in part],
        )
        conn.execute(
            sa.update(t.referrals)
            .where(_r.id.in_([rid for rid, _ in part]), _r.status == "pending")
            .values(status="qualified")
        )
    return len(found)


def _month_start(settings: Settings, now: datetime) -> datetime:
    local = now.astimezone(settings.tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# Settlement statements, built once: a settle run executes them for every referral.
_LOCK_REFERRAL = (
    sa.update(at.referral_details)
    .where(_d.referral_id == sa.bindparam("rid"))
    .values(lock_seq=_d.lock_seq + 1)
    .returning(_d.order_id, _d.due_at)
)
_REFERRAL = sa.select(_r.referrer_id, _r.referee_id, _r.referred_at, _r.status).where(
    _r.id == sa.bindparam("rid")
)
_LOCK_REFERRER = (
    sa.update(at.referral_codes)
    .where(_c.customer_id == sa.bindparam("cid"))
    .values(lock_seq=_c.lock_seq + 1)
    .returning(_c.id)
)
_PEOPLE = sa.select(
    _cust.id,
    _cust.external_id,
    _cust.email,
    _cust.phone,
    _cust.postal_code,
    _cust.attributes["address"].as_string().label("address"),
).where(_cust.id.in_(sa.bindparam("ids", expanding=True)))


def _count(*where: Any) -> Any:
    return sa.select(sa.func.count()).where(*where).scalar_subquery()


_earlier = t.orders.alias("earlier").c
_ORDER_FACTS = sa.select(
    _o.status,
    _count(
        _earlier.customer_id == sa.bindparam("referee"),
        _earlier.ordered_at < sa.bindparam("referred_at", type_=t.orders.c.ordered_at.type),
    ).label("earlier"),
    _count(t.returns.c.order_id == _o.id).label("returns"),
    _count(pt.earned_lines.c.order_id == _o.id, pt.earned_lines.c.refunded > 0).label("refunds"),
).where(_o.id == sa.bindparam("oid"))
_REWARDED = (
    sa.select(
        sa.func.count().label("lifetime"),
        sa.func.coalesce(
            sa.func.sum(
                sa.case(
                    (_d.settled_at >= sa.bindparam("month", type_=_d.settled_at.type), 1),
                    else_=0,
                )
            ),
            0,
        ).label("month"),
    )
    .select_from(t.referrals.join(at.referral_details, _d.referral_id == _r.id))
    .where(_r.referrer_id == sa.bindparam("cid"), _r.status == "rewarded")
)
_FINGERPRINT = sa.insert(at.referral_fingerprints)
_DECIDE = (
    sa.update(at.referral_details)
    .where(_d.referral_id == sa.bindparam("rid"))
    .values(
        reasons=sa.bindparam("reasons", type_=at.referral_details.c.reasons.type),
        settled_at=sa.bindparam("at", type_=at.referral_details.c.settled_at.type),
        referrer_points=sa.bindparam("rp"),
        referee_points=sa.bindparam("ep"),
    )
)
_SET_STATUS = (
    sa.update(t.referrals).where(_r.id == sa.bindparam("rid")).values(status=sa.bindparam("status"))
)


@dataclass(frozen=True)
class _Due:
    referrer_id: int
    referee_id: int
    referred_at: datetime
    order_id: int


def _facts(
    conn: sa.Connection, settings: Settings, ref: _Due, now: datetime
) -> tuple[rules.ReferralFacts, dict[int, str]]:
    """The verdict's facts, and the members' external ids."""
    key = fingerprint_key(settings)
    prints: dict[int, dict[str, str]] = {}
    members: dict[int, str] = {}
    for p in conn.execute(_PEOPLE, {"ids": [ref.referrer_id, ref.referee_id]}):
        members[int(p.id)] = str(p.external_id)
        prints[int(p.id)] = rules.fingerprints(
            key, email=p.email, phone=p.phone, address=p.address, postal_code=p.postal_code
        )
    order = conn.execute(
        _ORDER_FACTS,
        {"oid": ref.order_id, "referee": ref.referee_id, "referred_at": ref.referred_at},
    ).one()
    rewarded = conn.execute(
        _REWARDED, {"cid": ref.referrer_id, "month": _month_start(settings, now)}
    ).one()
    facts = rules.ReferralFacts(
        referrer_id=ref.referrer_id,
        referee_id=ref.referee_id,
        referrer_prints=prints.get(ref.referrer_id, {}),
        referee_prints=prints.get(ref.referee_id, {}),
        earlier_orders=int(order.earlier),
        order_cancelled=order.status == "cancelled",
        order_returned=bool(order.returns or order.refunds),
        rewarded_this_month=int(rewarded.month),
        rewarded_lifetime=int(rewarded.lifetime),
    )
    return facts, members


def _grant(
    uow: UnitOfWork, referral_id: int, role: str, member: str, points: int, now: datetime
) -> None:
    key = f"referral:{referral_id}:{role}"
    idem = Idem(key, hashlib.sha256(f"{key} {points}".encode()).hexdigest())
    reason = f"referral reward ({role}, referral {referral_id})"
    adjust(
        JoinedUnitOfWork(uow.conn, uow.settings),
        Adjust(member, points, reason, "referral", idem),
        now,
    )


def settle_one(uow: UnitOfWork, referral_id: int, now: datetime) -> str | None:
    """Reward or reject one due referral; None when another run already did."""
    conn, settings = uow.conn, uow.settings
    locked = conn.execute(_LOCK_REFERRAL, {"rid": referral_id}).first()
    ref = conn.execute(_REFERRAL, {"rid": referral_id}).first()
    if locked is None or ref is None or ref.status != "qualified" or locked.order_id is None:
        return None
    if locked.due_at is None or locked.due_at > now:
        return None
    if conn.execute(_LOCK_REFERRER, {"cid": ref.referrer_id}).first() is None:
        ensure_code(conn, int(ref.referrer_id), now)  # an imported referral's referrer
        conn.execute(_LOCK_REFERRER, {"cid": ref.referrer_id})
    due = _Due(int(ref.referrer_id), int(ref.referee_id), ref.referred_at, int(locked.order_id))
    facts, members = _facts(conn, settings, due, now)
    reasons = rules.fraud_reasons(
        facts, rules.Caps(settings.referral_cap_per_month, settings.referral_cap_lifetime)
    )
    if facts.referee_prints:
        conn.execute(
            _FINGERPRINT,
            [
                {"referral_id": referral_id, "kind": kind, "digest": digest}
                for kind, digest in facts.referee_prints.items()
            ],
        )
    points = (0, 0)
    if reasons:
        status = "rejected"
        record_event(
            conn,
            key=f"referral:{referral_id}:rejected",
            customer_id=due.referrer_id,
            type="referral_rejected",
            occurred_at=now,
            properties={"referral_id": referral_id, "reasons": reasons},
        )
    else:
        status = "rewarded"
        points = (settings.referral_referrer_points, settings.referral_referee_points)
        sides = [(due.referrer_id, "referrer", points[0]), (due.referee_id, "referee", points[1])]
        # Members are locked in id order, so two settlements never wait on each other.
        for customer_id, role, pts in sorted(sides):
            _grant(uow, referral_id, role, members[customer_id], pts, now)
            record_event(
                conn,
                key=f"referral:{referral_id}:rewarded:{role}",
                customer_id=customer_id,
                type="referral_rewarded",
                occurred_at=now,
                properties={"referral_id": referral_id, "role": role, "points": pts},
            )
    conn.execute(
        _DECIDE,
        {"rid": referral_id, "reasons": reasons, "at": now, "rp": points[0], "ep": points[1]},
    )
    conn.execute(_SET_STATUS, {"rid": referral_id, "status": status})
    return status


def settle(engine: sa.Engine, settings: Settings, now: datetime | None = None) -> SettleReport:
    """Capture imported codes, qualify first orders, then reward or reject what is due."""
    now = now or datetime.now(UTC)
    report = SettleReport()
    with UnitOfWork(engine, settings) as uow:
        take_writer(uow.conn)
        report.captured = _sweep(uow.conn, now)
        report.qualified = _qualify(uow.conn, settings)
        uow.commit()
    with engine.connect() as conn:
        due = (
            conn.execute(
                sa.select(_r.id)
                .select_from(t.referrals.join(at.referral_details, _d.referral_id == _r.id))
                .where(_r.status == "qualified", _d.due_at <= now)
                .order_by(_d.due_at, _r.id)
            )
            .scalars()
            .all()
        )
    for referral_id in due:
        with UnitOfWork(engine, settings) as uow:
            outcome = settle_one(uow, int(referral_id), now)
            uow.commit()
        if outcome == "rewarded":
            report.rewarded += 1
        elif outcome == "rejected":
            report.rejected += 1
    return report


def settle_job(engine: sa.Engine, settings: Settings, now: datetime) -> int:
    """The worker's hook: one settle run; the number of referrals it moved on."""
    return settle(engine, settings, now).total()


# -- reading ---------------------------------------------------------------------


def list_referrals(
    conn: sa.Connection, *, status: str | None = None, referrer: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Referrals newest first, with their verdict, for the dashboard, the CLI and the API."""
    query = _BODY.order_by(_r.referred_at.desc(), _r.id.desc()).limit(limit)
    if status is not None:
        if status not in rules.STATUSES:
            raise ValidationError(f"status must be one of {', '.join(rules.STATUSES)}")
        query = query.where(_r.status == status)
    if referrer is not None:
        query = query.where(_r.referrer_id == _customer(conn, referrer).id)
    return [_as_body(row) for row in conn.execute(query)]


def summary(conn: sa.Connection) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Referrals by status, and how often each fraud reason refused one (most common first)."""
    counts = {
        str(k): int(v)
        for k, v in conn.execute(sa.select(_r.status, sa.func.count()).group_by(_r.status))
    }
    reasons: dict[str, int] = {}
    rejected = sa.select(_d.reasons).join(t.referrals, _r.id == _d.referral_id)
    for (found,) in conn.execute(rejected.where(_r.status == "rejected")):
        for reason in found or []:
            reasons[reason] = reasons.get(reason, 0) + 1
    return counts, sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))


def get_referral(conn: sa.Connection, referral_id: int) -> dict[str, Any]:
    if conn.execute(sa.select(_r.id).where(_r.id == referral_id)).first() is None:
        raise NotFound(f"no referral {referral_id}")
    return _referral_body(conn, referral_id)


def impact(conn: sa.Connection, customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per referrer: customers referred, of them rewarded, and the referees' revenue since."""
    if not customer_ids:
        return {}
    o = t.orders.c
    out = {cid: {"referred": 0, "rewarded": 0, "revenue": 0} for cid in customer_ids}
    for row in conn.execute(
        sa.select(
            _r.referrer_id,
            sa.func.count(_r.id).label("n"),
            sa.func.sum(sa.case((_r.status == "rewarded", 1), else_=0)).label("ok"),
        )
        .where(_r.referrer_id.in_(customer_ids), _r.referee_id.is_not(None))
        .group_by(_r.referrer_id)
    ):
        out[int(row.referrer_id)].update(referred=int(row.n), rewarded=int(row.ok or 0))
    for row in conn.execute(
        sa.select(_r.referrer_id, sa.func.sum(o.total_amount).label("revenue"))
        .select_from(t.referrals.join(t.orders, o.customer_id == _r.referee_id))
        .where(
            _r.referrer_id.in_(customer_ids),
            o.status == "completed",
            o.ordered_at >= _r.referred_at,
        )
        .group_by(_r.referrer_id)
    ):
        out[int(row.referrer_id)]["revenue"] = int(row.revenue or 0)
    return out
