"""Refunds and returns: reverse exactly the points the refunded lines earned.

A full or partial return reverses, line by line, what each line earned
(cumulatively, so refunding a line in parts reverses what one full refund
would); points already spent are handled by the programme's
``negative_policy``; tier credit is withdrawn with them; and the refunded
lines are written to the canonical ``returns`` table that analytics read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain import schedule
from kizuna.domain.earning import reversal_for
from kizuna.domain.tiers import qualified_tier, rank
from kizuna.errors import NotFound, ValidationError
from kizuna.services.programme import system_events
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.members import Opened, balance_dict, open_member, qualifying
from kizuna.services.programme.orders import order_row
from kizuna.services.programme.store import save_book
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t


@dataclass(frozen=True)
class RefundOrder:
    """Refund lines of an order (``lines`` None: the whole order)."""

    order_id: str
    refund_id: str
    lines: tuple[tuple[int, int], ...] | None = None
    idem: Idem | None = None
    reason: str = "refund"
    extra: dict[str, Any] = field(default_factory=dict)
    #: Returned quantity per line number, when the till knows it.
    quantities: dict[int, int] = field(default_factory=dict)
    #: Write the refunded lines to ``returns`` (what analytics read), as an import would.
    record_return: bool = True


def refund(
    uow: UnitOfWork, cmd: RefundOrder, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Reverse exactly the points the refunded lines earned; the policy covers points already spent."""
    now = now or datetime.now(UTC)
    order = order_row(uow, cmd.order_id)
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
    if cmd.record_return:
        _record_returns(uow, cmd, int(order.id), int(order.customer_id), wanted, now)
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


def _record_returns(
    uow: UnitOfWork,
    cmd: RefundOrder,
    order_pk: int,
    customer_id: int,
    wanted: Sequence[tuple[int, int]],
    now: datetime,
) -> None:
    """The refunded lines as rows of the canonical ``returns`` table, in the same transaction.

    Analytics (repeat rate, net revenue, referral return windows) read
    ``returns``; a refund made at the till must count there as one imported
    from the shop system would. The quantity is the till's, or else the
    share of the line's quantity the amount stands for (at least 1). The key
    ``<refund_id>:<line_no>`` keeps a retried refund from adding a row twice.
    """
    ol = t.order_lines.c
    lines = {
        r.line_no: r
        for r in uow.conn.execute(
            sa.select(ol.line_no, ol.quantity, ol.amount).where(ol.order_id == order_pk)
        )
    }
    rows = []
    for line_no, amount in sorted(wanted):
        line = lines.get(line_no)
        if amount <= 0 or line is None:
            continue
        quantity = cmd.quantities.get(line_no)
        if quantity is None:
            share = round(line.quantity * amount / line.amount) if line.amount else line.quantity
            quantity = min(line.quantity, max(1, share))
        rows.append(
            {
                "external_id": f"{cmd.refund_id}:{line_no}"[:128],
                "order_id": order_pk,
                "customer_id": customer_id,
                "line_no": line_no,
                "quantity": quantity,
                "refund_amount": amount,
                "returned_at": now,
                "reason": cmd.reason[:500],
            }
        )
    if rows:
        insert = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
        uow.conn.execute(
            insert(t.returns).on_conflict_do_nothing(index_elements=["external_id"]), rows
        )


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
    system_events.tier_changed(
        uow, account.customer_id, account.external_id, account.tier, target_name, now, "refund"
    )
    return {"tier": target_name, "tier_since": now}
