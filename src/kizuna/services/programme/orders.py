"""Orders: quote what an order earns, and record it (earn).

A recorded order is written to ``orders``/``order_lines`` (unless an import
already brought it) so analytics see till sales at once, and the points each
line earned are kept in ``earned_lines`` so a partial return
(:mod:`kizuna.services.programme.refunds`) reverses exactly what its lines
earned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.domain import schedule
from kizuna.domain.clock import local_date, local_day_start
from kizuna.domain.earning import (
    Line,
    Quote,
    period_caps,
    period_start,
    quote_order,
)
from kizuna.domain.programme import Programme
from kizuna.domain.tiers import rank, upgrade
from kizuna.errors import Conflict, ValidationError
from kizuna.services.programme import config, coupons, system_events
from kizuna.services.programme.idempotency import Idem, remembered
from kizuna.services.programme.members import Opened, balance_dict, open_member
from kizuna.services.programme.store import MAX_ID, Account, customer_id_of, save_book
from kizuna.services.programme.writes import Writes, nextval
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

#: Bigger than any real order line (10^11 minor units is ¥100 billion); above it is a bug upstream.
MAX_AMOUNT = 10**11
MAX_LINES = 1000


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    amount: int
    quantity: int = 1
    product: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class RecordOrder:
    """Record a purchase and award its points."""

    order_id: str
    member_id: str
    lines: tuple[OrderLine, ...]
    ordered_at: datetime | None = None
    currency: str | None = None
    coupon_code: str | None = None
    channel: str | None = None
    store: str | None = None
    idem: Idem | None = None


def check_lines(
    lines: Sequence[OrderLine], currency: str | None, programme: Programme, expected: str
) -> None:
    """Refuse what cannot be a real order, naming the line and the fix."""
    if currency is not None and currency.upper() != expected:
        raise ValidationError(
            f"currency {currency!r} is not this programme's currency {expected}; send amounts in {expected}"
        )
    if not lines:
        raise ValidationError("an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise ValidationError(
            f"an order may have at most {MAX_LINES} lines; use the batch endpoint for bulk loads"
        )
    seen: set[int] = set()
    for line in lines:
        if line.line_no in seen:
            raise ValidationError(f"line_no {line.line_no} appears twice; number lines uniquely")
        seen.add(line.line_no)
        if line.amount < 0:
            raise ValidationError(
                f"line {line.line_no}: amount {line.amount} is negative; send refunds to the refund endpoint"
            )
        if line.amount > MAX_AMOUNT:
            raise ValidationError(
                f"line {line.line_no}: amount {line.amount} is absurdly large (over {MAX_AMOUNT} minor units)"
            )
        if line.quantity <= 0 or line.quantity > 1_000_000:
            raise ValidationError(f"line {line.line_no}: quantity must be between 1 and 1000000")


def check_command(cmd: RecordOrder) -> None:
    """The checks of an earn call that need no database (the group writer runs them first)."""
    if not cmd.order_id or len(cmd.order_id) > MAX_ID:
        raise ValidationError(f"order_id must be 1 to {MAX_ID} characters")
    if cmd.ordered_at is not None and cmd.ordered_at.tzinfo is None:
        raise ValidationError("ordered_at needs a timezone offset, e.g. 2026-11-26T10:00:00+09:00")


def _categories(uow: UnitOfWork, lines: Sequence[OrderLine]) -> tuple[list[Line], dict[str, int]]:
    """Earning lines with each product's category from the catalogue when not given."""
    names = sorted({x.product for x in lines if x.product})
    found: dict[str, tuple[int, str | None]] = {}
    if names:
        p, c = t.products.c, t.categories.c
        q = (
            sa.select(p.external_id, p.id, c.external_id.label("cat"))
            .select_from(t.products.outerjoin(t.categories, p.category_id == c.id))
            .where(p.external_id.in_(names))
        )
        found = {r.external_id: (r.id, r.cat) for r in uow.conn.execute(q)}
    out = [
        Line(
            x.line_no,
            x.amount,
            x.product,
            x.category or (found.get(x.product, (0, None))[1] if x.product else None),
        )
        for x in lines
    ]
    return out, {k: v[0] for k, v in found.items()}


def quote(uow: UnitOfWork, cmd: RecordOrder, now: datetime | None = None) -> dict[str, Any]:
    """What the order would earn and why; writes nothing."""
    now = now or datetime.now(UTC)
    active = config.active_programme(uow)
    programme = active.programme
    check_lines(cmd.lines, cmd.currency, programme, uow.settings.currency)
    tier = None
    customer_id = None
    if cmd.member_id:
        customer_id = customer_id_of(uow, cmd.member_id)
        row = uow.conn.execute(
            sa.select(pt.point_accounts.c.tier).where(
                pt.point_accounts.c.customer_id == customer_id
            )
        ).first()
        tier = row.tier if row else None
    lines, _ = _categories(uow, cmd.lines)
    at = cmd.ordered_at or now
    earned_in = _earned_in(uow, customer_id, programme, at) if customer_id else {}
    q = quote_order(
        programme,
        lines,
        local_date(at, programme.tz),
        tier=tier,
        earned_today=earned_in.get("day", 0),
        earned_in=earned_in,
    )
    return _quote_dict(q, programme, active.version, tier)


def _quote_dict(q: Quote, programme: Programme, version: int, tier: str | None) -> dict[str, Any]:
    return {
        "points": q.points,
        "point_name": programme.point_name,
        "spend": q.spend,
        "tier": tier,
        "lines": [
            {"line_no": x.line_no, "amount": x.amount, "points": x.points, "why": x.why}
            for x in q.lines
        ],
        "explanation": list(q.steps),
        "programme_version": version,
    }


def cap_periods(programme: Programme) -> tuple[str, ...]:
    """The periods whose earlier earnings this programme's caps need: day, week, month, year."""
    return (("day",) if programme.cap_per_day else ()) + tuple(period_caps(programme))


def _period_starts(programme: Programme, periods: tuple[str, ...], at: datetime) -> dict[str, Any]:
    """Each cap period's first instant, from the order's local day in the programme timezone."""
    day = local_date(at, programme.tz)
    return {
        f"{p}_start": local_day_start(period_start(p, day, programme.year_starts), programme.tz)
        for p in periods
    }


def _earned_in(
    uow: UnitOfWork, customer_id: int | None, programme: Programme, at: datetime
) -> dict[str, int]:
    """What the member already earned from orders in each capped period holding ``at``."""
    periods = cap_periods(programme)
    if customer_id is None or not periods:
        return {}
    e = pt.ledger_entries.c
    out = {}
    for name, start in _period_starts(programme, periods, at).items():
        q = sa.select(sa.func.coalesce(sa.func.sum(e.qualifying_points), 0)).where(
            e.customer_id == customer_id,
            e.kind == "earn",
            e.at >= start,
            e.qualifying_spend > 0,
        )
        out[name.removesuffix("_start")] = int(uow.conn.execute(q).scalar_one())
    return out


_o = t.orders.c
_ORDER = sa.select(_o.id, _o.customer_id, _o.total_amount).where(
    _o.external_id == sa.bindparam("ext")
)
_NEW_ORDER = sa.insert(t.orders).returning(_o.id)
_e = pt.ledger_entries.c
_el = pt.earned_lines.c
_k = pt.idempotency_keys.c


@functools.lru_cache(maxsize=64)
def _reads(pg: bool, periods: tuple[str, ...], first: bool, basis: str | None) -> Any:
    """Everything an earn call reads after taking the lock, as one statement (one round trip).

    It runs after the lock, so it sees every earlier write for this member:
    the day's earnings for the cap, whether an earlier order earned (the
    first-purchase reward), the qualifying total for tiers, and the stored
    response of an Idempotency-Key. On PostgreSQL it also draws the ids of
    the order and lots this call may insert, so the writes need no RETURNING.
    """
    cid: Any = sa.bindparam("cid")
    order_pk = sa.select(_o.id).where(_o.external_id == sa.bindparam("ext")).scalar_subquery()
    cols: list[Any] = [
        sa.select(_k.request_hash)
        .where(_k.key == sa.bindparam("ik"))
        .scalar_subquery()
        .label("ik_hash"),
        sa.select(_k.status_code)
        .where(_k.key == sa.bindparam("ik"))
        .scalar_subquery()
        .label("ik_status"),
        sa.select(_k.response)
        .where(_k.key == sa.bindparam("ik"))
        .scalar_subquery()
        .label("ik_body"),
        order_pk.label("order_pk"),
        sa.select(_o.customer_id)
        .where(_o.external_id == sa.bindparam("ext"))
        .scalar_subquery()
        .label("order_cid"),
        sa.exists(sa.select(_el.id).where(_el.order_id == order_pk)).label("earned"),
    ]
    for period in periods:
        cols.append(
            sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_points), 0))
            .where(
                _e.customer_id == cid,
                _e.kind == "earn",
                _e.at >= sa.bindparam(f"{period}_start"),
                _e.qualifying_spend > 0,
            )
            .scalar_subquery()
            .label(f"earned_{period}")
        )
    if first:
        cols.append(
            sa.exists(
                sa.select(_e.id).where(
                    _e.customer_id == cid, _e.kind == "earn", _e.qualifying_spend > 0
                )
            ).label("earned_before")
        )
    if basis is not None:
        window = (
            _e.customer_id == cid,
            _e.at >= sa.bindparam("start"),
            _e.at < sa.bindparam("end"),
        )
        measure = {
            "spend": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_spend), 0)).where(
                *window
            ),
            "orders": sa.select(sa.func.count()).where(
                *window, _e.kind == "earn", _e.qualifying_spend > 0
            ),
            "points": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_points), 0)).where(
                *window
            ),
        }[basis]
        cols.append(measure.scalar_subquery().label("qualifying"))
    if pg:
        cols.append(nextval(t.orders).label("order_id_new"))
        cols.append(nextval(pt.point_lots).label("lot_id_1"))
        if first:
            cols.append(nextval(pt.point_lots).label("lot_id_2"))
    return sa.select(*cols)


def order_row(uow: UnitOfWork, order_id: str) -> Any:
    return uow.conn.execute(_ORDER, {"ext": order_id}).first()


def record_order(
    uow: UnitOfWork, cmd: RecordOrder, now: datetime | None = None, *, commit: bool = True
) -> tuple[int, dict[str, Any]]:
    """Earn for an order; returns (HTTP-like status, result). Commits unless told not to.

    Round trips on PostgreSQL: the lock, one statement of reads, one of
    writes (plus the lots, only when a release or expiry is due).
    """
    now = now or datetime.now(UTC)
    check_command(cmd)
    opened = open_member(uow, None, cmd.member_id, now, need_lots=False)
    account = opened.account
    programme = opened.active.programme
    at = cmd.ordered_at or now
    pg = uow.dialect == "postgresql"
    periods = cap_periods(programme)
    first = bool(programme.actions.get("first_purchase"))
    basis = tier_basis(programme, account.tier)
    params: dict[str, Any] = {
        "cid": account.customer_id,
        "ik": cmd.idem.key if cmd.idem else "",
        "ext": cmd.order_id,
    }
    params.update(_period_starts(programme, periods, at))
    if basis is not None:
        params["start"], params["end"] = schedule.tier_window(programme, now, account.member_since)
    got = uow.conn.execute(_reads(pg, periods, first, basis), params).one()
    if cmd.idem is not None and got.ik_hash is not None:
        if got.ik_hash != cmd.idem.request_hash:
            raise Conflict(
                f"Idempotency-Key {cmd.idem.key!r} was already used for a different request; "
                "send a new key for a new request, or the same body to retry"
            )
        return int(got.ik_status), dict(got.ik_body)
    ids: dict[str, list[int]] = {}
    if pg:
        ids = {
            t.orders.name: [got.order_id_new],
            pt.point_lots.name: [got.lot_id_1] + ([got.lot_id_2] if first else []),
        }
    writes = Writes(uow, ids)
    status, body = earn_locked(uow, cmd, now, opened, got, writes)
    writes.flush()
    if commit:
        uow.commit()
    return status, body


def tier_basis(programme: Programme, tier: str | None) -> str | None:
    """What qualifies for the next tier, or None at the top tier (nothing left to reach)."""
    if programme.tiers and rank(programme, tier) < len(programme.tiers) - 1:
        return programme.tier_basis
    return None


def earn_locked(
    uow: UnitOfWork, cmd: RecordOrder, now: datetime, opened: Opened, got: Any, writes: Writes
) -> tuple[int, dict[str, Any]]:
    """The earn once the member is locked and ``got`` holds what :func:`_reads` reads.

    Shared by the one-call path and the group writer (which locks and reads a
    whole group at once): every row goes into ``writes``, which the caller
    flushes. ``writes`` holds the ids drawn for this order's order and lots.
    """
    account = opened.account
    customer_id = account.customer_id  # whose points (the pool, in a pooled B2B programme)
    buyer = opened.actor_id  # whose order
    programme = opened.active.programme
    at = cmd.ordered_at or now
    periods = cap_periods(programme)
    first = bool(programme.actions.get("first_purchase"))
    basis = tier_basis(programme, account.tier)
    check_lines(cmd.lines, cmd.currency, programme, uow.settings.currency)
    lines, product_ids = _categories(uow, cmd.lines)
    total = sum(x.amount for x in cmd.lines)
    if got.order_pk is not None:
        if got.order_cid != buyer:
            raise Conflict(f"order {cmd.order_id} belongs to another member")
        if got.earned:
            raise Conflict(
                f"order {cmd.order_id} has already earned points; a retry must reuse its Idempotency-Key"
            )
        order_pk = int(got.order_pk)
    discount = (
        coupons.use(uow, cmd.coupon_code, total, buyer, now, cmd.order_id) if cmd.coupon_code else 0
    )
    if got.order_pk is None:
        order_pk = _insert_order(uow, cmd, buyer, at, total, discount, product_ids, writes)
    earned_in = {p: int(getattr(got, f"earned_{p}")) for p in periods}
    q = quote_order(
        programme,
        lines,
        local_date(at, programme.tz),
        tier=account.tier,
        earned_today=earned_in.get("day", 0),
        earned_in=earned_in,
    )
    lot = opened.book.earn(
        q.points,
        at=now,
        available_at=schedule.available_at(programme, now),
        expires_at=schedule.expires_at(programme, now),
        source=f"order:{cmd.order_id}",
        reason=f"purchase of {total}: " + "; ".join(q.steps),
        qualifying_points=q.points,
        qualifying_spend=total,
    )
    bonus = (
        _first_purchase_bonus(opened, programme, now, cmd.order_id)
        if first and not got.earned_before
        else 0
    )
    voucher = _frequency_voucher(uow, opened, programme, now)
    tier_change = (
        _maybe_upgrade(
            uow,
            opened,
            programme,
            now,
            int(got.qualifying)
            + {"points": q.points, "spend": total, "orders": 1}[programme.tier_basis],
            writes,
        )
        if basis is not None
        else {}
    )
    save_book(
        uow,
        account,
        opened.book,
        opened.active.version,
        activity_at=now,
        extra=tier_change,
        writes=writes,
    )
    assert lot.id is not None
    writes.insert(
        pt.earned_lines,
        [
            {
                "order_id": order_pk,
                "customer_id": customer_id,
                "line_no": x.line_no,
                "lot_id": lot.id,
                "amount": x.amount,
                "points": x.points,
            }
            for x in q.lines
        ],
    )
    body = {
        "order_id": cmd.order_id,
        "member_id": cmd.member_id,
        **_quote_dict(q, programme, opened.active.version, account.tier),
        "state": lot.state,
        "available_at": lot.available_at.isoformat(),
        "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        "coupon_discount": discount,
        "voucher": voucher,
        "first_purchase_bonus": bonus,
        "tier": tier_change.get("tier", account.tier),
        "tier_changed": "tier" in tier_change,
        "balance": balance_dict(opened.book.balance),
    }
    if cmd.idem is not None:
        writes.insert(pt.idempotency_keys, [remembered(cmd.idem, 201, body)])
    return 201, body


def _insert_order(
    uow: UnitOfWork,
    cmd: RecordOrder,
    customer_id: int,
    at: datetime,
    total: int,
    discount: int,
    product_ids: dict[str, int],
    writes: Writes,
) -> int:
    row = {
        "external_id": cmd.order_id,
        "customer_id": customer_id,
        "ordered_at": at,
        "channel": cmd.channel,
        "store": cmd.store,
        "status": "completed",
        "total_amount": total,
        "discount_amount": discount,
        "coupon_code": cmd.coupon_code,
    }
    order_pk = writes.take_id(t.orders)
    if order_pk is None:
        order_pk = int(uow.conn.execute(_NEW_ORDER, row).scalar_one())
    else:
        writes.insert(t.orders, [{"id": order_pk, **row}])
    writes.insert(
        t.order_lines,
        [
            {
                "order_id": order_pk,
                "customer_id": customer_id,
                "line_no": x.line_no,
                "product_id": product_ids.get(x.product) if x.product else None,
                "quantity": x.quantity,
                "unit_price": x.amount // x.quantity,
                "amount": x.amount,
            }
            for x in cmd.lines
        ],
    )
    return order_pk


def _first_purchase_bonus(
    opened: Opened, programme: Programme, now: datetime, order_id: str
) -> int:
    """The ``first_purchase`` action, awarded by the member's first earning order.

    The caller has checked (after the lock) that no earlier order earned; the
    bonus is a lot of its own, so refunding the order does not silently take
    the bonus with it.
    """
    points = programme.actions["first_purchase"]
    opened.book.earn(
        points,
        at=now,
        available_at=schedule.available_at(programme, now),
        expires_at=schedule.expires_at(programme, now),
        source=f"action:first_purchase:{order_id}",
        reason=f"reward for first_purchase ({order_id})",
    )
    return points


def _frequency_voucher(
    uow: UnitOfWork, opened: Opened, programme: Programme, now: datetime
) -> str | None:
    """Every Nth order within the window earns a single-use voucher for the member.

    With ``scope = "account"`` the orders of every member of the same company
    count together: the B2B frequency programme.
    """
    n = programme.frequency_orders
    if n <= 0 or programme.frequency_voucher_value <= 0:
        return None
    account = opened.account
    today = local_date(now, programme.tz)
    start = local_day_start(today - timedelta(days=programme.frequency_days - 1), programme.tz)
    members: Any = [account.customer_id]
    if programme.frequency_scope == "account":
        company = uow.conn.execute(
            sa.select(t.customers.c.account_id).where(t.customers.c.id == account.customer_id)
        ).scalar()
        if company is not None:
            members = sa.select(t.customers.c.id).where(t.customers.c.account_id == company)
    e = pt.ledger_entries.c
    count = uow.conn.execute(
        sa.select(sa.func.count()).where(
            e.customer_id.in_(members), e.kind == "earn", e.qualifying_spend > 0, e.at >= start
        )
    ).scalar_one()
    if (int(count) + 1) % n:
        return None
    code = coupons.generate(
        uow,
        count=1,
        kind=programme.frequency_voucher_kind,
        value=programme.frequency_voucher_value,
        batch=f"frequency-{today.isoformat()}",
        valid_until=now + timedelta(days=programme.frequency_days),
        customer_id=account.customer_id,
    )[0]
    _event(uow, "frequency.voucher", account, {"code": code, "orders": int(count) + 1})
    return code


def _maybe_upgrade(
    uow: UnitOfWork,
    opened: Opened,
    programme: Programme,
    now: datetime,
    qualifying_now: int,
    writes: Writes,
) -> dict[str, Any]:
    """Upgrade at once when this order crosses a threshold (``qualifying_now`` includes it).

    The announcements (outbox row, journey event) join the call's statement of writes.
    """
    account = opened.account
    new = upgrade(programme, account.tier, qualifying_now)
    if new == account.tier:
        return {}
    system_events.tier_changed(
        uow, account.customer_id, account.external_id, account.tier, new, now, writes=writes
    )
    return {
        "tier": new,
        "tier_since": now,
        "tier_review_at": schedule.tier_period_end(programme, now, account.member_since),
    }


def _event(uow: UnitOfWork, topic: str, account: Account, payload: dict[str, Any]) -> None:
    """Queue a webhook event in the same transaction as its cause (the outbox)."""
    uow.conn.execute(
        sa.insert(pt.programme_events).values(
            topic=topic,
            customer_id=account.customer_id,
            payload={"member_id": account.external_id, **payload},
            created_at=datetime.now(UTC),
        )
    )
