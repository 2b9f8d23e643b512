"""The set-based write of a group of earn calls (PostgreSQL), for :mod:`group_commit`.

One statement locks every member of the group, one reads what each call
needs (what :func:`orders._reads` reads for one call) and draws its ids,
each order is computed by the one-call path's own code
(:func:`orders.earn_locked`), and one statement writes every row of the
group and updates every account. Calls this write does not take are left to
the one-call code, which the group runs after it in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kizuna.domain import schedule
from kizuna.domain.ledger import Book
from kizuna.domain.programme import Programme
from kizuna.errors import KizunaError
from kizuna.services.programme import config
from kizuna.services.programme.members import Opened
from kizuna.services.programme.orders import RecordOrder, cap_periods, earn_locked
from kizuna.services.programme.store import ACCOUNT_STATE, account_of_row, json_rows
from kizuna.services.programme.writes import Writes, nextval
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

Result = tuple[int, dict[str, Any]]
Item = tuple[RecordOrder, datetime | None]


class Refused(Exception):
    """One order of the group was refused; the group is rolled back."""

    def __init__(self, index: int) -> None:
        self.index = index


_a = pt.point_accounts.c
_c = t.customers.c
_e = pt.ledger_entries.c
#: The group's members, locked in customer id order (so groups never deadlock
#: each other); ``FOR UPDATE`` without bumping ``lock_seq``: a member this
#: group then leaves to the one-call path is locked again there, as alone.
_ACCOUNT_COLUMNS = (_a.customer_id, *ACCOUNT_STATE)
_known = (
    sa.select(_c.id, _c.external_id)
    .where(_c.external_id == sa.any_(sa.bindparam("exts", type_=postgresql.ARRAY(sa.String))))
    .order_by(_c.id)
    .cte("known")
)
_locked = (
    sa.select(*_ACCOUNT_COLUMNS)
    .where(_a.customer_id == _known.c.id)
    .with_for_update()
    .lateral("acc")
)
#: The group's members, each with its account locked (``customer_id`` None:
#: no account yet) in customer id order, so groups never deadlock each other;
#: a member missing from the result is unknown. ``FOR UPDATE`` without bumping
#: ``lock_seq``: a member the group leaves to the one-call path is locked
#: again there, as alone, and the set-based write bumps it once.
_LOCK_GROUP = sa.select(_known.c.external_id, *_locked.c).select_from(
    _known.outerjoin(_locked, sa.true())
)


def _found(select: Any) -> Any:
    """``(SELECT .. LIMIT 1) IS NOT NULL``: "is there such a row", looked up per call.

    Not ``EXISTS``: PostgreSQL may plan a correlated ``EXISTS`` as a *hashed*
    subplan, which reads the whole table once per statement. With
    ``jsonb_to_recordset`` estimated at 100 rows it did so for ``orders``
    (measured: a group's read went from 0.3 to 4.5 ms as the table grew to
    16,000 orders, and it grows with every order a shop ever recorded). A
    scalar subquery is never hashed, so each call is one index probe.
    """
    return select.limit(1).scalar_subquery().is_not(None)


@functools.cache
def _group_reads(first: bool, basis: str) -> Any:
    """What :func:`orders._reads` reads for one call, for every call of the group at once.

    Built once per shape: building and cache-keying this statement anew cost
    ~1 ms of CPU per group, as much as recording one order.
    """
    r = json_rows(
        [
            ("i", sa.Integer()),
            ("cid", sa.BigInteger()),
            ("ik", sa.String()),
            ("ext", sa.String()),
            ("start", sa.DateTime(timezone=True)),
            ("end", sa.DateTime(timezone=True)),
        ]
    )
    k, o = pt.idempotency_keys.c, t.orders.c
    cols: list[Any] = [
        r.c.i,
        _found(sa.select(k.key).where(k.key == r.c.ik)).label("ik_stored"),
        _found(sa.select(o.id).where(o.external_id == r.c.ext)).label("order_exists"),
    ]
    window = (_e.customer_id == r.c.cid, _e.at >= r.c.start, _e.at < r.c.end)
    measure = {
        "spend": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_spend), 0)).where(*window),
        "orders": sa.select(sa.func.count()).where(
            *window, _e.kind == "earn", _e.qualifying_spend > 0
        ),
        "points": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_points), 0)).where(*window),
    }[basis]
    cols.append(measure.scalar_subquery().label("qualifying"))
    if first:
        cols.append(
            _found(
                sa.select(_e.id).where(
                    _e.customer_id == r.c.cid, _e.kind == "earn", _e.qualifying_spend > 0
                )
            ).label("earned_before")
        )
    # Drawn row by row, left to right: the ids one call after another would draw.
    cols.append(nextval(t.orders).label("order_id_new"))
    cols.append(nextval(pt.point_lots).label("lot_id_1"))
    if first:
        cols.append(nextval(pt.point_lots).label("lot_id_2"))
    return sa.select(*cols).select_from(r)


#: Account columns a group's write sets (the tier's three to their old values
#: when the order did not change it), so one statement shape serves every member.
_ACCOUNT_SET = (
    "pending",
    "available",
    "reserved",
    "debt",
    "next_due_at",
    "last_activity_at",
    "tier",
    "tier_since",
    "tier_review_at",
)


class GroupWrites(Writes):
    """The rows of every call the group writes set-based, sent as ONE statement at :meth:`flush`.

    Rows of one table and shape go in as one ``INSERT .. SELECT FROM
    jsonb_to_recordset(..)``, in the order the calls made them (so ids follow
    the same order as one call after another), each a data-modifying CTE of
    the ``UPDATE`` of every account (as :class:`Writes` does for one call).
    """

    def __init__(self, uow: UnitOfWork, accounts: dict[int, Any]) -> None:
        super().__init__(uow)
        self.known = accounts
        self.accounts: dict[int, dict[str, Any]] = {}

    def update_account(self, customer_id: int, values: dict[str, Any]) -> None:
        account = self.known[customer_id]
        unchanged = {
            "tier": account.tier,
            "tier_since": account.tier_since,
            "tier_review_at": account.tier_review_at,
        }
        full = {**unchanged, **values}
        if set(full) != set(_ACCOUNT_SET):
            raise RuntimeError(f"unexpected account columns {sorted(full)}")
        self.accounts[customer_id] = full

    def flush(self) -> None:
        buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for table, rows, conflict in self.inserts:
            buckets.setdefault((table.name, tuple(rows[0]), conflict), []).extend(rows)
        self.inserts = []
        stmt = _build_writes(tuple(buckets))
        params: dict[str, Any] = {f"r{n}_rows": rows for n, rows in enumerate(buckets.values())}
        params["d_rows"] = [{"customer_id": cid, **values} for cid, values in self.accounts.items()]
        params["d_ids"] = list(self.accounts)
        self.accounts = {}
        self.uow.conn.execute(stmt, params)


@functools.cache
def _build_writes(shape: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> Any:
    """The group's one write statement for this shape of rows, built once per shape."""
    ctes = []
    for n, (name, cols, conflict) in enumerate(shape):
        table = t.metadata.tables[name]
        src = json_rows([(c, table.c[c].type) for c in cols], name=f"r{n}")
        insert = postgresql.insert(table).from_select(
            list(cols), sa.select(*(src.c[c] for c in cols))
        )
        if conflict:
            insert = insert.on_conflict_do_nothing(index_elements=list(conflict))
        ctes.append(insert.cte(f"w{n}"))
    d = json_rows(
        [("customer_id", sa.BigInteger())] + [(c, _a[c].type) for c in _ACCOUNT_SET], name="d"
    )
    # ``= ANY(:d_ids)`` besides the join: the planner takes any
    # ``jsonb_to_recordset`` for 100 rows, and against a few thousand accounts
    # it hashed them and read the whole table for each group (1 ms of the
    # statement's 1.8 ms at 10,000 members); with the ids it probes the key.
    update = (
        sa.update(pt.point_accounts)
        .where(
            _a.customer_id == d.c.customer_id,
            _a.customer_id == sa.any_(sa.bindparam("d_ids", type_=postgresql.ARRAY(sa.BigInteger))),
        )
        .values({"lock_seq": _a.lock_seq + 1, **{c: d.c[c] for c in _ACCOUNT_SET}})
    )
    return update.add_cte(*ctes)


def set_based(programme: Programme) -> bool:
    """Whether this programme's earn can be written set-based for a whole group.

    Caps per period, a pooled B2B programme and frequency vouchers depend on
    other orders in ways the one-call path reads under each lock; those
    programmes' calls go through the one-call code inside the group instead.
    """
    return (
        not cap_periods(programme)
        and programme.pool != "account"
        and (programme.frequency_orders <= 0 or programme.frequency_voucher_value <= 0)
    )


def write_set_based(
    uow: UnitOfWork,
    items: Sequence[Item],
    order: list[int],
    results: dict[int, Result],
    unknown: list[int],
) -> list[int]:
    """Write the calls of ``order`` that need nothing but the plain earn, set-based.

    Three statements lock and read the whole group; the rows of every call
    are then computed by the one-call path's own code (:func:`earn_locked`)
    and written together. Returns the calls left for the one-call path (a
    member's second order in the group, coupons, products to look up, a
    member who owes points or whose lots fall due, a stored key...), which
    run after these, in the same transaction.
    """
    active = config.active_programme(uow)
    programme = active.programme
    if uow.dialect != "postgresql" or not set_based(programme):
        return order
    left: list[int] = []
    chosen: list[int] = []
    members: set[str] = set()
    keys: set[str] = set()
    order_ids: set[str] = set()
    for i in order:
        cmd = items[i][0]
        key = cmd.idem.key if cmd.idem else ""
        # A call that follows another call of the same member, key or order
        # stays behind it, so each member's calls keep their order.
        blocked = (
            cmd.coupon_code
            or any(x.product for x in cmd.lines)
            or cmd.member_id in members
            or key in keys
            or cmd.order_id in order_ids
        )
        members.add(cmd.member_id)
        keys.add(key)
        order_ids.add(cmd.order_id)
        if blocked:
            left.append(i)
        else:
            chosen.append(i)
    if len(chosen) < 2:
        return order
    wanted = sorted({items[i][0].member_id for i in chosen})
    rows = {r.external_id: r for r in uow.conn.execute(_LOCK_GROUP, {"exts": wanted})}
    first = bool(programme.actions.get("first_purchase"))
    opened: dict[int, tuple[Opened, datetime]] = {}
    reads: list[dict[str, Any]] = []
    for i in chosen:
        cmd, when = items[i]
        now = when or datetime.now(UTC)
        row = rows.get(cmd.member_id)
        if row is None:  # unknown member: refused alone, after the group
            unknown.append(i)
            continue
        if row.customer_id is None:  # no account yet: enrolment is the one-call path's
            left.append(i)
            continue
        account = account_of_row(int(row.customer_id), cmd.member_id, row)
        deadline = schedule.inactivity_deadline(
            programme, account.last_activity_at or account.member_since
        )
        if (
            (deadline is not None and deadline <= now)
            or account.next_due_at is None
            or now >= account.next_due_at
            or account.balance.debt != 0
        ):
            left.append(i)
            continue
        account.lots_loaded = False
        book = Book((), account.balance, (), programme.negative_policy)
        opened[i] = (Opened(account, book, active, account.customer_id), now)
        start, end = (
            schedule.tier_window(programme, now, account.member_since)
            if programme.tiers
            else (now, now)
        )
        reads.append(
            {
                "i": i,
                "cid": account.customer_id,
                "ik": cmd.idem.key if cmd.idem else "",
                "ext": cmd.order_id,
                "start": start,
                "end": end,
            }
        )
    if not reads:
        return [i for i in order if i not in set(unknown)]
    got = {
        r.i: r
        for r in uow.conn.execute(_group_reads(first, programme.tier_basis), {"r_rows": reads})
    }
    writes = GroupWrites(uow, {m.account.customer_id: m.account for m, _ in opened.values()})
    for want in reads:
        i = want["i"]
        g = got[i]
        if g.ik_stored or g.order_exists:  # a replay or an imported order: as alone
            left.append(i)
            continue
        member, now = opened[i]
        writes.ids = {
            t.orders.name: [g.order_id_new],
            pt.point_lots.name: [g.lot_id_1] + ([g.lot_id_2] if first else []),
        }
        read = SimpleNamespace(
            order_pk=None,
            order_cid=None,
            earned=False,
            earned_before=bool(g.earned_before) if first else True,
            qualifying=g.qualifying,
        )
        try:
            results[i] = earn_locked(uow, items[i][0], now, member, read, writes)
        except KizunaError as exc:
            raise Refused(i) from exc
    writes.flush()
    done = set(results) | set(unknown)
    return [i for i in order if i not in done]
