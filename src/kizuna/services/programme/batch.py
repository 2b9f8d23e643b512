"""Back-office loads: earn for many orders in one transaction, set-based.

The same rules as :func:`kizuna.services.programme.orders.record_order`, but
members are locked together (in id order, so two batches never deadlock),
rows are written set-based (``COPY`` on PostgreSQL, and one statement per
kind of change over ``jsonb_to_recordset``, however many members), and the
batch is all or nothing: one bad order refuses the batch with every problem
listed. Members who owe
points (a refund debt to repay) go through the one-order path, which repays.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kizuna.domain import schedule
from kizuna.domain.clock import local_date
from kizuna.domain.earning import Line, quote_order
from kizuna.domain.ledger import AVAILABLE, EARN, PENDING
from kizuna.domain.tiers import upgrade
from kizuna.errors import NotFound, ValidationError
from kizuna.services.programme import config, system_events
from kizuna.services.programme.idempotency import Idem, remember, replay
from kizuna.services.programme.members import open_member
from kizuna.services.programme.orders import (
    RecordOrder,
    cap_periods,
    check_lines,
    record_order,
)
from kizuna.services.programme.store import (
    NEVER_DUE,
    insert_many,
    json_rows,
    save_book,
)
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

MAX_ORDERS = 100_000
_CHUNK = 5000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _insert_rows(uow: UnitOfWork, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Many rows at once: ``COPY`` on PostgreSQL (several times faster than
    multi-row INSERT), one prepared ``executemany`` on SQLite. Same transaction."""
    if not rows:
        return
    if uow.dialect != "postgresql":
        for part in _chunks(rows, 20_000):
            uow.conn.execute(sa.insert(table), list(part))
        return
    columns = list(rows[0])
    raw = uow.conn.connection.dbapi_connection
    assert raw is not None
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _any(column: Any, values: Sequence[Any], pg: bool) -> Any:
    """``column = ANY(:array)`` on PostgreSQL (one parameter, one plan), else ``IN``."""
    if pg:
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(column.type)))
    return column.in_(values)


def _insert_returning_ids(
    uow: UnitOfWork, table: sa.Table, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert rows and return their new ids, in order.

    PostgreSQL: ids are drawn from the table's sequence first, then the rows
    go in by ``COPY``. SQLite: one multi-row INSERT .. RETURNING per chunk.
    """
    if not rows:
        return []
    if uow.dialect == "postgresql":
        seq = uow.conn.execute(
            sa.select(sa.func.pg_get_serial_sequence(table.name, "id"))
        ).scalar_one()
        ids = list(
            uow.conn.execute(
                sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, len(rows)))
            ).scalars()
        )
        _insert_rows(uow, table, [{"id": i, **r} for i, r in zip(ids, rows, strict=True)])
        return [int(i) for i in ids]
    out: list[int] = []
    for part in _chunks(rows):
        stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        out += [int(i) for i in uow.conn.execute(stmt, list(part)).scalars()]
    return out


def record_orders(
    uow: UnitOfWork, cmds: Sequence[RecordOrder], idem: Idem | None, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Earn for every order of a batch, or for none of them."""
    now = now or datetime.now(UTC)
    if not 1 <= len(cmds) <= MAX_ORDERS:
        raise ValidationError(f"a batch holds 1 to {MAX_ORDERS} orders, got {len(cmds)}")
    conn = uow.conn
    pg = uow.dialect == "postgresql"
    active = config.active_programme(uow)
    members = sorted({c.member_id for c in cmds})
    ids: dict[str, int] = {}
    for part in _chunks(members):
        cc = t.customers.c
        rows = conn.execute(sa.select(cc.external_id, cc.id).where(_any(cc.external_id, part, pg)))
        ids.update({r.external_id: r.id for r in rows})
    unknown = [m for m in members if m not in ids]
    if unknown:
        raise NotFound(
            f"unknown member(s) {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}: import them first"
        )
    # Lock: create missing accounts (a write, so SQLite takes its lock now), then lock in id order.
    if active.programme.automatic_signup:
        _enrol_with_signup(uow, ids, now)
    insert_many(
        uow,
        pt.point_accounts,
        [
            {"customer_id": i, "member_since": now, "next_due_at": NEVER_DUE}
            for i in sorted(ids.values())
        ],
        conflict=["customer_id"],
    )
    a = pt.point_accounts.c
    accounts: dict[int, Any] = {}
    for part in _chunks(sorted(ids.values())):
        lock = (
            sa.select(a.customer_id, a.pending, a.available, a.debt, a.tier, a.member_since)
            .where(_any(a.customer_id, part, pg))
            .order_by(a.customer_id)
        )
        if uow.dialect == "postgresql":
            lock = lock.with_for_update()
        accounts.update({r.customer_id: r for r in conn.execute(lock)})
    stored = replay(uow, idem)
    if stored is not None:
        return stored.status, stored.body
    programme = active.programme
    problems: list[str] = []
    seen: set[str] = set()
    for c in cmds:
        if c.order_id in seen:
            problems.append(f"order {c.order_id} appears twice in the batch")
        seen.add(c.order_id)
        try:
            check_lines(c.lines, c.currency, programme, uow.settings.currency)
        except ValidationError as exc:
            problems.append(f"order {c.order_id}: {exc}")
    existing: dict[str, tuple[int, int]] = {}
    for part in _chunks(sorted(seen)):
        existing.update(
            {
                r.external_id: (r.id, r.customer_id)
                for r in conn.execute(
                    sa.select(t.orders.c.external_id, t.orders.c.id, t.orders.c.customer_id).where(
                        _any(t.orders.c.external_id, part, pg)
                    )
                )
            }
        )
    earned_already: set[int] = set()
    for part in _chunks([v[0] for v in existing.values()]):
        earned_already.update(
            conn.execute(
                sa.select(pt.earned_lines.c.order_id)
                .where(_any(pt.earned_lines.c.order_id, part, pg))
                .distinct()
            ).scalars()
        )
    for c in cmds:
        if c.order_id in existing:
            pk, owner = existing[c.order_id]
            if owner != ids[c.member_id]:
                problems.append(f"order {c.order_id} belongs to another member")
            elif pk in earned_already:
                problems.append(f"order {c.order_id} has already earned points")
        if c.coupon_code:
            problems.append(
                f"order {c.order_id}: coupons are applied at the till (POST /v1/orders), not in batches"
            )
    if problems:
        raise ValidationError(
            f"{len(problems)} problem(s), nothing written: " + "; ".join(problems[:20])
        )

    # Caps per day/week/month/year depend on earlier orders, and a pooled B2B
    # programme earns into the company's pool: those go one by one too.
    one_by_one = bool(cap_periods(programme)) or programme.pool == "account"
    slow = [c for c in cmds if one_by_one or accounts[ids[c.member_id]].debt > 0]
    fast = [c for c in cmds if not one_by_one and accounts[ids[c.member_id]].debt == 0]
    available_at = schedule.available_at(programme, now)
    expires_at = schedule.expires_at(programme, now)
    state = PENDING if available_at > now else AVAILABLE
    due_at = min(
        d for d in (available_at if state == PENDING else None, expires_at, NEVER_DUE) if d
    )
    due = sa.literal(due_at, pt.point_accounts.c.next_due_at.type)
    # orders and their lines
    new_orders = [c for c in fast if c.order_id not in existing]
    order_pk: dict[str, int] = {k: v[0] for k, v in existing.items()}
    order_rows = [
        {
            "external_id": c.order_id,
            "customer_id": ids[c.member_id],
            "ordered_at": c.ordered_at or now,
            "channel": c.channel,
            "store": c.store,
            "status": "completed",
            "total_amount": sum(x.amount for x in c.lines),
            "discount_amount": 0,
        }
        for c in new_orders
    ]
    new_ids = _insert_returning_ids(uow, t.orders, order_rows)
    order_pk.update({c.order_id: i for c, i in zip(new_orders, new_ids, strict=True)})
    line_rows = [
        {
            "order_id": order_pk[c.order_id],
            "customer_id": ids[c.member_id],
            "line_no": x.line_no,
            "product_id": None,
            "quantity": x.quantity,
            "unit_price": x.amount // x.quantity,
            "amount": x.amount,
        }
        for c in new_orders
        for x in c.lines
    ]
    _insert_rows(uow, t.order_lines, line_rows)
    # points
    tiers = {cid: acc.tier for cid, acc in accounts.items()}
    quotes = []
    for c in fast:
        lines = [Line(x.line_no, x.amount, x.product, x.category) for x in c.lines]
        quotes.append(
            quote_order(
                programme,
                lines,
                local_date(c.ordered_at or now, programme.tz),
                tier=tiers[ids[c.member_id]],
            )
        )
    lot_rows = [
        {
            "customer_id": ids[c.member_id],
            "points": q.points,
            "remaining": q.points,
            "expired": 0,
            "state": state,
            "earned_at": now,
            "available_at": available_at,
            "expires_at": expires_at,
            "source": f"order:{c.order_id}"[:200],
        }
        for c, q in zip(fast, quotes, strict=True)
    ]
    lot_ids = _insert_returning_ids(uow, pt.point_lots, lot_rows)
    entries, earned = [], []
    delta: dict[int, int] = defaultdict(int)
    for c, q, lot_id in zip(fast, quotes, lot_ids, strict=True):
        cid = ids[c.member_id]
        delta[cid] += q.points
        entries.append(
            {
                "customer_id": cid,
                "at": now,
                "kind": EARN,
                "lot_id": lot_id,
                "lot_delta": q.points,
                "pending": q.points if state == PENDING else 0,
                "available": q.points if state == AVAILABLE else 0,
                "reserved": 0,
                "debt": 0,
                "qualifying_points": q.points,
                "qualifying_spend": q.spend,
                "reason": f"purchase of {q.spend} (batch): " + "; ".join(q.steps),
                "source": f"order:{c.order_id}"[:200],
                "actor": None,
                "programme_version_id": active.version,
            }
        )
        earned += [
            {
                "order_id": order_pk[c.order_id],
                "customer_id": cid,
                "line_no": x.line_no,
                "lot_id": lot_id,
                "amount": x.amount,
                "points": x.points,
                "refunded": 0,
                "reversed": 0,
            }
            for x in q.lines
        ]
    _insert_rows(uow, pt.ledger_entries, entries)
    _insert_rows(uow, pt.earned_lines, earned)
    tier_updates = _upgrades(uow, programme, accounts, delta, now)
    column = a.pending if state == PENDING else a.available
    # The new lots may fall due before what the account knew of.
    next_due = sa.case((a.next_due_at > due, due), else_=a.next_due_at)
    _update_accounts(
        uow,
        [("customer_id", sa.BigInteger()), ("delta", sa.BigInteger())],
        [{"customer_id": cid, "delta": d} for cid, d in delta.items()],
        lambda d: {
            column.key: column + d["delta"],
            "last_activity_at": now,
            "next_due_at": next_due,
        },
    )
    _update_accounts(
        uow,
        [(c, a[c].type) for c in ("customer_id", "tier", "tier_review_at")],
        [
            {
                "customer_id": cid,
                "tier": tier,
                "tier_review_at": schedule.tier_period_end(
                    programme, now, accounts[cid].member_since
                ),
            }
            for cid, tier in tier_updates.items()
        ],
        lambda d: {"tier": d["tier"], "tier_since": now, "tier_review_at": d["tier_review_at"]},
    )
    if tier_updates:
        external = {v: k for k, v in ids.items()}
        system_events.tiers_changed(
            uow,
            [(cid, external[cid], accounts[cid].tier, tier) for cid, tier in tier_updates.items()],
            now,
        )
    results = {c.order_id: q.points for c, q in zip(fast, quotes, strict=True)}
    for c in slow:  # the exact one-order path, in the same transaction
        _, body = record_order(uow, c, now, commit=False)
        results[c.order_id] = int(body["points"])
    body = {
        "orders": len(cmds),
        "lines": sum(len(c.lines) for c in cmds),
        "points": sum(results.values()),
        "tier_changes": len(tier_updates),
        "results": [{"order_id": c.order_id, "points": results[c.order_id]} for c in cmds],
    }
    remember(uow, idem, 201, body)
    uow.commit()
    return 201, body


def _update_accounts(
    uow: UnitOfWork,
    columns: list[tuple[str, Any]],
    rows: list[dict[str, Any]],
    values: Callable[[Any], dict[str, Any]],
) -> None:
    """Update many accounts, each from its row (keyed ``customer_id``).

    PostgreSQL: one ``UPDATE .. FROM jsonb_to_recordset(..)``. SQLite: one
    compiled statement and a list of parameter sets (in-process, no round trips).
    ``values`` maps the row's columns (``d["name"]``) to the new values.
    """
    if not rows:
        return
    a = pt.point_accounts.c
    if uow.dialect == "postgresql":
        d = json_rows(columns, name="d")
        stmt = sa.update(pt.point_accounts).where(a.customer_id == d.c.customer_id)
        uow.conn.execute(stmt.values(values(d.c)), {"d_rows": rows})
        return
    params = {c: sa.bindparam(f"v_{c}", type_=type_) for c, type_ in columns}
    stmt = sa.update(pt.point_accounts).where(a.customer_id == params["customer_id"])
    uow.conn.execute(
        stmt.values(values(params)),
        [{f"v_{k}": v for k, v in row.items()} for row in rows],
    )


def _enrol_with_signup(uow: UnitOfWork, ids: dict[str, int], now: datetime) -> None:
    """Members enrolled by this batch get their automatic sign-up points, as one by one."""
    a = pt.point_accounts.c
    have: set[int] = set()
    for part in _chunks(sorted(ids.values())):
        have.update(
            uow.conn.execute(sa.select(a.customer_id).where(a.customer_id.in_(part))).scalars()
        )
    for external, cid in sorted(ids.items(), key=lambda kv: kv[1]):
        if cid not in have:
            opened = open_member(uow, cid, external, now, need_lots=False)
            save_book(uow, opened.account, opened.book, opened.active.version)


def _upgrades(
    uow: UnitOfWork, programme: Any, accounts: dict[int, Any], delta: dict[int, int], now: datetime
) -> dict[int, str | None]:
    """Tier upgrades from the batch's qualifying activity (one grouped query per window)."""
    if not programme.tiers or not delta:
        return {}
    e = pt.ledger_entries.c
    measure = {
        "points": sa.func.sum(e.qualifying_points),
        "spend": sa.func.sum(e.qualifying_spend),
        "orders": sa.func.count(),
    }[programme.tier_basis]
    windows: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for cid in delta:
        windows[schedule.tier_window(programme, now, accounts[cid].member_since)].append(cid)
    out: dict[int, str | None] = {}
    for (start, end), cids in windows.items():
        for part in _chunks(cids):
            q = sa.select(e.customer_id, measure).where(
                _any(e.customer_id, part, uow.dialect == "postgresql"), e.at >= start, e.at < end
            )
            if programme.tier_basis == "orders":
                q = q.where(e.kind == EARN, e.qualifying_spend > 0)
            for cid, value in uow.conn.execute(q.group_by(e.customer_id)):
                new = upgrade(programme, accounts[cid].tier, int(value or 0))
                if new != accounts[cid].tier:
                    out[cid] = new
    return out
