"""Orders: quote what an order earns, record it (earn), refund or return it (reverse).

A recorded order is written to ``orders``/``order_lines`` (unless an import
already brought it) so analytics see till sales at once, and the points each
line earned are kept in ``earned_lines`` so a partial return reverses
exactly what its lines earned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.domain import schedule
from kizuna.domain.clock import local_date, local_day_start
from kizuna.domain.earning import Line, Quote, quote_order, reversal_for
from kizuna.domain.programme import Programme
from kizuna.domain.tiers import qualified_tier, rank, upgrade
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.programme import config, coupons
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.members import Opened, balance_dict, open_member, qualifying
from kizuna.services.programme.store import MAX_ID, Account, customer_id_of, insert_rows, save_book
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


@dataclass(frozen=True)
class RefundOrder:
    """Refund lines of an order (``lines`` None: the whole order)."""

    order_id: str
    refund_id: str
    lines: tuple[tuple[int, int], ...] | None = None
    idem: Idem | None = None
    reason: str = "refund"
    extra: dict[str, Any] = field(default_factory=dict)


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
    today = (
        _earned_today(uow, customer_id, programme, at)
        if customer_id and programme.cap_per_day
        else 0
    )
    q = quote_order(programme, lines, local_date(at, programme.tz), tier=tier, earned_today=today)
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


def _earned_today(
    uow: UnitOfWork, customer_id: int | None, programme: Programme, at: datetime
) -> int:
    if customer_id is None:
        return 0
    day = local_date(at, programme.tz)
    e = pt.ledger_entries.c
    q = sa.select(sa.func.coalesce(sa.func.sum(e.qualifying_points), 0)).where(
        e.customer_id == customer_id,
        e.kind == "earn",
        e.at >= local_day_start(day, programme.tz),
        e.qualifying_spend > 0,
    )
    return int(uow.conn.execute(q).scalar_one())


_o = t.orders.c
_ORDER = sa.select(_o.id, _o.customer_id, _o.total_amount).where(
    _o.external_id == sa.bindparam("ext")
)
_NEW_ORDER = sa.insert(t.orders).returning(_o.id)
_EARNED = (
    sa.select(pt.earned_lines.c.id)
    .where(pt.earned_lines.c.order_id == sa.bindparam("oid"))
    .limit(1)
)


def _order_row(uow: UnitOfWork, order_id: str) -> Any:
    return uow.conn.execute(_ORDER, {"ext": order_id}).first()


def record_order(
    uow: UnitOfWork, cmd: RecordOrder, now: datetime | None = None, *, commit: bool = True
) -> tuple[int, dict[str, Any]]:
    """Earn for an order; returns (HTTP-like status, result). Commits unless told not to."""
    now = now or datetime.now(UTC)
    if not cmd.order_id or len(cmd.order_id) > MAX_ID:
        raise ValidationError(f"order_id must be 1 to {MAX_ID} characters")
    if cmd.ordered_at is not None and cmd.ordered_at.tzinfo is None:
        raise ValidationError("ordered_at needs a timezone offset, e.g. 2026-11-26T10:00:00+09:00")
    opened = open_member(uow, None, cmd.member_id, now)
    customer_id = opened.account.customer_id
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    programme = opened.active.programme
    check_lines(cmd.lines, cmd.currency, programme, uow.settings.currency)
    at = cmd.ordered_at or now
    lines, product_ids = _categories(uow, cmd.lines)
    total = sum(x.amount for x in cmd.lines)
    existing = _order_row(uow, cmd.order_id)
    if existing is not None:
        if existing.customer_id != customer_id:
            raise Conflict(f"order {cmd.order_id} belongs to another member")
        done = uow.conn.execute(_EARNED, {"oid": existing.id}).first()
        if done is not None:
            raise Conflict(
                f"order {cmd.order_id} has already earned points; a retry must reuse its Idempotency-Key"
            )
        order_pk = int(existing.id)
    discount = coupons.use(uow, cmd.coupon_code, total, customer_id, now) if cmd.coupon_code else 0
    if existing is None:
        order_pk = _insert_order(uow, cmd, customer_id, at, total, discount, product_ids)
    today = _earned_today(uow, customer_id, programme, at) if programme.cap_per_day else 0
    q = quote_order(
        programme, lines, local_date(at, programme.tz), tier=opened.account.tier, earned_today=today
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
    bonus = _first_purchase_bonus(uow, opened, programme, now, cmd.order_id)
    voucher = _frequency_voucher(uow, opened, programme, now)
    tier_change = _maybe_upgrade(
        uow, opened, programme, now, extra_points=q.points, extra_spend=total
    )
    save_book(
        uow, opened.account, opened.book, opened.active.version, activity_at=now, extra=tier_change
    )
    assert lot.id is not None
    insert_rows(
        uow,
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
        **_quote_dict(q, programme, opened.active.version, opened.account.tier),
        "state": lot.state,
        "available_at": lot.available_at.isoformat(),
        "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        "coupon_discount": discount,
        "voucher": voucher,
        "first_purchase_bonus": bonus,
        "tier": tier_change.get("tier", opened.account.tier),
        "tier_changed": "tier" in tier_change,
        "balance": balance_dict(opened.book.balance),
    }
    remember(uow, cmd.idem, 201, body)
    if commit:
        uow.commit()
    return 201, body


def _insert_order(
    uow: UnitOfWork,
    cmd: RecordOrder,
    customer_id: int,
    at: datetime,
    total: int,
    discount: int,
    product_ids: dict[str, int],
) -> int:
    order_pk = int(
        uow.conn.execute(
            _NEW_ORDER,
            {
                "external_id": cmd.order_id,
                "customer_id": customer_id,
                "ordered_at": at,
                "channel": cmd.channel,
                "store": cmd.store,
                "status": "completed",
                "total_amount": total,
                "discount_amount": discount,
                "coupon_code": cmd.coupon_code,
            },
        ).scalar_one()
    )
    insert_rows(
        uow,
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


_e = pt.ledger_entries.c
_EARNED_BEFORE = (
    sa.select(_e.id)
    .where(_e.customer_id == sa.bindparam("cid"), _e.kind == "earn", _e.qualifying_spend > 0)
    .limit(2)
)


def _first_purchase_bonus(
    uow: UnitOfWork, opened: Opened, programme: Programme, now: datetime, order_id: str
) -> int:
    """The ``first_purchase`` action, awarded by the member's first earning order.

    The order's own earn entry is not saved yet, so "first" means no earlier
    earning order; the bonus is a lot of its own, so refunding the order
    does not silently take the bonus with it.
    """
    points = programme.actions.get("first_purchase")
    if not points:
        return 0
    if uow.conn.execute(_EARNED_BEFORE, {"cid": opened.account.customer_id}).first() is not None:
        return 0
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
    extra_points: int,
    extra_spend: int,
) -> dict[str, Any]:
    """Upgrade at once when this order crosses a threshold (the entry is not saved yet)."""
    account = opened.account
    if not programme.tiers or rank(programme, account.tier) == len(programme.tiers) - 1:
        return {}
    start, end = schedule.tier_window(programme, now, account.member_since)
    q = qualifying(uow, account.customer_id, programme.tier_basis, start, end)
    q += {"points": extra_points, "spend": extra_spend, "orders": 1}[programme.tier_basis]
    new = upgrade(programme, account.tier, q)
    if new == account.tier:
        return {}
    _event(uow, "tier.changed", account, {"from": account.tier, "to": new, "at": now.isoformat()})
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


def refund(
    uow: UnitOfWork, cmd: RefundOrder, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Reverse exactly the points the refunded lines earned; the policy covers points already spent."""
    now = now or datetime.now(UTC)
    order = _order_row(uow, cmd.order_id)
    if order is None:
        raise NotFound(f"unknown order {cmd.order_id!r}")
    external = uow.conn.execute(
        sa.select(t.customers.c.external_id).where(t.customers.c.id == order.customer_id)
    ).scalar_one()
    earned = {
        r.line_no: r
        for r in uow.conn.execute(
            sa.select(pt.earned_lines).where(pt.earned_lines.c.order_id == order.id)
        )
    }
    opened = open_member(
        uow,
        order.customer_id,
        external,
        now,
        lot_ids=tuple({int(r.lot_id) for r in earned.values()}),
    )
    stored = replay(uow, cmd.idem)
    if stored is not None:
        return stored.status, stored.body
    if not earned:
        raise ValidationError(
            f"order {cmd.order_id} earned no points here, so there is nothing to reverse"
        )
    # Re-read under the lock: a concurrent refund of the same order may have committed.
    earned = {
        r.line_no: r
        for r in uow.conn.execute(
            sa.select(pt.earned_lines).where(pt.earned_lines.c.order_id == order.id)
        )
    }
    wanted = (
        cmd.lines
        if cmd.lines is not None
        else tuple((n, r.amount - r.refunded) for n, r in earned.items())
    )
    per_lot: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    updates = []
    for line_no, amount in wanted:
        row = earned.get(line_no)
        if row is None:
            raise ValidationError(
                f"order {cmd.order_id} has no line {line_no}; lines are {sorted(earned)}"
            )
        left = row.amount - row.refunded
        if amount < 0 or amount > left:
            raise ValidationError(
                f"line {line_no}: refund amount must be between 0 and {left} (what is left to refund), got {amount}"
            )
        pts = reversal_for(row.points, row.amount, row.refunded, amount)
        per_lot[int(row.lot_id)][0] += pts
        per_lot[int(row.lot_id)][1] += amount
        updates.append(
            {"row_id": row.id, "refunded": row.refunded + amount, "reversed": row.reversed + pts}
        )
    lots = {lot.id: lot for lot in opened.book.lots}
    totals = {"points": 0, "from_lot": 0, "already_expired": 0, "by_policy": 0, "written_off": 0}
    for lot_id, (pts, spend) in per_lot.items():
        r = opened.book.reverse(
            lots[lot_id],
            pts,
            at=now,
            source=f"refund:{cmd.refund_id}",
            reason=f"{cmd.reason} of {spend} on order {cmd.order_id}",
            qualifying_points=pts,
            qualifying_spend=spend,
        )
        for k in totals:
            totals[k] += getattr(r, k)
    if updates:
        el = pt.earned_lines.c
        uow.conn.execute(
            sa.update(pt.earned_lines).where(el.id == sa.bindparam("row_id")),
            updates,
        )
    tier_fix = _correct_tier(
        uow, opened, now, totals["points"], sum(s for _, s in per_lot.values())
    )
    save_book(uow, opened.account, opened.book, opened.active.version, extra=tier_fix)
    body = {
        "refund_id": cmd.refund_id,
        "order_id": cmd.order_id,
        "member_id": external,
        "reversed_points": totals["points"],
        "from_order_lot": totals["from_lot"],
        "already_expired": totals["already_expired"],
        "taken_by_policy": totals["by_policy"],
        "policy": opened.active.programme.negative_policy,
        "written_off": totals["written_off"],
        "tier": tier_fix.get("tier", opened.account.tier),
        "balance": balance_dict(opened.book.balance),
    }
    remember(uow, cmd.idem, 201, body)
    uow.commit()
    return 201, body


def _correct_tier(
    uow: UnitOfWork, opened: Opened, now: datetime, points: int, spend: int
) -> dict[str, Any]:
    """A refund withdraws tier credit: if the member no longer qualifies, the tier follows at once."""
    programme = opened.active.programme
    account = opened.account
    if not programme.tiers or account.tier is None:
        return {}
    start, end = schedule.tier_window(programme, now, account.member_since)
    if account.tier_since is None or account.tier_since < start:
        return {}  # the tier was earned in an earlier period; the period review decides
    q = qualifying(uow, account.customer_id, programme.tier_basis, start, end)
    q -= {"points": points, "spend": spend, "orders": 0}[programme.tier_basis]
    target = qualified_tier(programme, q)
    target_name = target.name if target else None
    if rank(programme, target_name) >= rank(programme, account.tier):
        return {}
    _event(
        uow,
        "tier.changed",
        account,
        {"from": account.tier, "to": target_name, "at": now.isoformat(), "why": "refund"},
    )
    return {"tier": target_name, "tier_since": now}
