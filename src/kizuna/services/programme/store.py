"""Loading a member's book from the database, locking it, and writing back what changed.

The account row is the lock: every write to a member first bumps its
``lock_seq`` with an UPDATE, which holds the row lock on PostgreSQL and the
database write lock on SQLite (the UPDATE is the transaction's first
statement, so SQLite takes its write lock before reading anything, the
same effect as ``BEGIN IMMEDIATE``). Concurrent requests for one member
therefore wait their turn instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain.ledger import AVAILABLE, PENDING, Balance, Book, Entry, Hold, Lot
from kizuna.errors import NotFound, ValidationError
from kizuna.services.programme.writes import Writes
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

#: Longest external id we accept; the column is this wide.
MAX_ID = 128
#: Stored as ``next_due_at`` when no live lot will ever be released or expire.
NEVER_DUE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class Account:
    """The member's account row as read under its lock."""

    customer_id: int
    external_id: str
    balance: Balance
    tier: str | None
    tier_since: datetime | None
    tier_review_at: datetime | None
    member_since: datetime
    last_activity_at: datetime | None
    birthday_year: int | None
    next_due_at: datetime | None = None
    #: False when the writer skipped loading the lots (nothing was due):
    #: the book then holds only the lots this request creates.
    lots_loaded: bool = True
    #: True when this request created the account: the member's enrolment.
    created: bool = False


# Hot-path statements are built once: building and cache-keying a statement
# per call costs about as much as running it on a local database.
_CUSTOMER = sa.select(t.customers.c.id).where(t.customers.c.external_id == sa.bindparam("ext"))
_a = pt.point_accounts.c
#: What :func:`account_of_row` reads of a locked account (the group write locks with the same).
ACCOUNT_STATE = (
    _a.pending,
    _a.available,
    _a.reserved,
    _a.debt,
    _a.tier,
    _a.tier_since,
    _a.tier_review_at,
    _a.member_since,
    _a.last_activity_at,
    _a.birthday_year,
    _a.next_due_at,
)
_LOCK = (
    sa.update(pt.point_accounts)
    .where(_a.customer_id == sa.bindparam("cid"))
    .values(lock_seq=_a.lock_seq + 1)
    .returning(*ACCOUNT_STATE)
)


_lt = pt.point_lots.c
_LIVE_LOTS = sa.select(pt.point_lots).where(
    _lt.customer_id == sa.bindparam("cid"), _lt.state.in_((PENDING, AVAILABLE)), _lt.remaining > 0
)
_NEW_LOT = sa.insert(pt.point_lots).returning(pt.point_lots.c.id)
_UPDATE_ACCOUNT = sa.update(pt.point_accounts).where(_a.customer_id == sa.bindparam("b_cid"))


def insert_rows(uow: UnitOfWork, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """A few rows in one statement and one round trip.

    A list of parameter sets would go to the driver's ``executemany``, which
    on psycopg runs a pipeline with several round trips even for two rows.
    """
    if len(rows) == 1:
        uow.conn.execute(sa.insert(table), rows[0])
    elif uow.dialect == "sqlite":
        # In-process: executemany costs no round trips, and a multi-row VALUES
        # would be compiled afresh on every call (SQLAlchemy cannot cache it).
        uow.conn.execute(sa.insert(table), rows)
    elif len(rows) <= 100:
        uow.conn.execute(sa.insert(table).values(rows))
    elif rows:
        uow.conn.execute(sa.insert(table), rows)


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonRows(sa.types.TypeDecorator[Any]):
    """A list of rows as one JSON text: instants as ISO 8601 with their offset.

    Serialised in one ``json.dumps`` call (C encoder, a hook only for
    instants) instead of copying every row to convert its instants first:
    the copy was the largest single cost of recording a group of earn calls.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return json.dumps(value, default=_instant, separators=(",", ":"))


def json_rows(columns: Sequence[tuple[str, Any]], name: str = "r") -> Any:
    """``jsonb_to_recordset(:<name>_rows) AS <name>(col type, ..)``: a whole list
    of rows (dicts) as one parameter (PostgreSQL).

    One statement for thousands of rows, planned once, where a list of
    parameter sets runs a statement per row on the server.
    """
    rows = sa.cast(sa.bindparam(f"{name}_rows", type_=JsonRows), postgresql.JSONB)
    return (
        sa.func.jsonb_to_recordset(rows)
        .table_valued(*(sa.column(c, type_) for c, type_ in columns))
        .render_derived(name=name, with_types=True)
    )


def insert_many(
    uow: UnitOfWork,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (same keys each) in one statement; with ``conflict``, rows
    whose key exists already are skipped (``ON CONFLICT (..) DO NOTHING``).

    PostgreSQL: ``INSERT .. SELECT .. FROM jsonb_to_recordset(..)``, one
    statement whatever the number of rows. SQLite: one compiled statement and
    a list of parameter sets, in-process.
    """
    if not rows:
        return
    insert: Any = _upsert(uow.dialect)
    if uow.dialect == "postgresql":
        columns = list(rows[0])
        src = json_rows([(c, table.c[c].type) for c in columns])
        stmt = insert(table).from_select(columns, sa.select(*(src.c[c] for c in columns)))
        params: Any = {"r_rows": rows}
    else:
        stmt, params = insert(table), list(rows)
    if conflict is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    uow.conn.execute(stmt, params)


def customer_id_of(uow: UnitOfWork, external_id: str) -> int:
    if not external_id or len(external_id) > MAX_ID:
        raise ValidationError(f"member id must be 1 to {MAX_ID} characters, got {external_id!r}")
    found = uow.conn.execute(_CUSTOMER, {"ext": external_id}).scalar()
    if found is None:
        raise NotFound(f"unknown member {external_id!r}: import or create the customer first")
    return int(found)


def _upsert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _insert_account(uow: UnitOfWork, customer_id: int, now: datetime) -> bool:
    """Create the account on first use; True if this call created it (the enrolment)."""
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "member_since": now,
        "next_due_at": NEVER_DUE,  # no lots yet, so nothing can fall due
    }
    stmt = _upsert(uow.dialect)(pt.point_accounts).values(values).on_conflict_do_nothing()
    return bool(uow.conn.execute(stmt).rowcount)


_LOCK_BY_EXTERNAL_ID = (
    sa.update(pt.point_accounts)
    .where(_a.customer_id == t.customers.c.id, t.customers.c.external_id == sa.bindparam("ext"))
    .values(lock_seq=_a.lock_seq + 1)
    .returning(_a.customer_id, *_LOCK.exported_columns)
)


def _enrol_by_external_id(dialect: str) -> Any:
    c = t.customers.c
    return (
        _upsert(dialect)(pt.point_accounts)
        .from_select(
            ["customer_id", "member_since", "next_due_at"],
            sa.select(
                c.id,
                sa.bindparam("now", type_=pt.point_accounts.c.member_since.type),
                sa.bindparam("never", type_=pt.point_accounts.c.next_due_at.type),
            ).where(c.external_id == sa.bindparam("ext")),
        )
        .on_conflict_do_nothing()
    )


_ENROL = {name: _enrol_by_external_id(name) for name in ("postgresql", "sqlite")}


def lock_member(uow: UnitOfWork, external_id: str, now: datetime) -> Account:
    """Find and lock a member by external id in one round trip (the common case).

    A member without an account yet is enrolled by one INSERT .. SELECT (no
    separate lookup); ``Account.created`` tells the caller it was this call.
    """
    if not external_id or len(external_id) > MAX_ID:
        raise ValidationError(f"member id must be 1 to {MAX_ID} characters, got {external_id!r}")
    row = uow.conn.execute(_LOCK_BY_EXTERNAL_ID, {"ext": external_id}).first()
    created = False
    if row is None:  # unknown member (NotFound), or a member without an account yet
        params = {"ext": external_id, "now": now, "never": NEVER_DUE}
        created = bool(uow.conn.execute(_ENROL[uow.dialect], params).rowcount)
        row = uow.conn.execute(_LOCK_BY_EXTERNAL_ID, {"ext": external_id}).first()
        if row is None:
            raise NotFound(f"unknown member {external_id!r}: import or create the customer first")
    account = account_of_row(int(row.customer_id), external_id, row)
    account.created = created
    return account


def lock_account(uow: UnitOfWork, customer_id: int, external_id: str, now: datetime) -> Account:
    """Lock the member's account (creating it on first use) and read it."""
    row = uow.conn.execute(_LOCK, {"cid": customer_id}).first()
    created = False
    if row is None:
        created = _insert_account(uow, customer_id, now)
        row = uow.conn.execute(_LOCK, {"cid": customer_id}).one()
    account = account_of_row(customer_id, external_id, row)
    account.created = created
    return account


def account_of_row(customer_id: int, external_id: str, row: Any) -> Account:
    """The account held in a row of ``loyalty_accounts`` columns (any query selecting them)."""
    return Account(
        customer_id,
        external_id,
        Balance(row.pending, row.available, row.reserved, row.debt),
        row.tier,
        row.tier_since,
        row.tier_review_at,
        row.member_since,
        row.last_activity_at,
        row.birthday_year,
        row.next_due_at,
    )


def read_account(uow: UnitOfWork, customer_id: int, external_id: str) -> Account | None:
    a = pt.point_accounts.c
    row = uow.conn.execute(sa.select(pt.point_accounts).where(a.customer_id == customer_id)).first()
    if row is None:
        return None
    return Account(
        customer_id,
        external_id,
        Balance(row.pending, row.available, row.reserved, row.debt),
        row.tier,
        row.tier_since,
        row.tier_review_at,
        row.member_since,
        row.last_activity_at,
        row.birthday_year,
        row.next_due_at,
    )


def _lot(row: Any) -> Lot:
    return Lot(
        points=row.points,
        remaining=row.remaining,
        state=row.state,
        earned_at=row.earned_at,
        available_at=row.available_at,
        expires_at=row.expires_at,
        source=row.source,
        expired=row.expired,
        id=row.id,
    )


def load_book(
    uow: UnitOfWork,
    account: Account,
    negative_policy: str,
    *,
    lot_ids: tuple[int, ...] = (),
    hold_refs: tuple[str, ...] = (),
) -> Book:
    """The member's live lots (plus any named ones) and the named holds."""
    lt = pt.point_lots.c
    live = sa.and_(lt.state.in_((PENDING, AVAILABLE)), lt.remaining > 0)
    holds_rows = []
    if hold_refs:
        holds_rows = list(
            uow.conn.execute(
                sa.select(pt.point_redemptions).where(
                    pt.point_redemptions.c.external_id.in_(hold_refs),
                    pt.point_redemptions.c.customer_id == account.customer_id,
                )
            )
        )
    wanted = set(lot_ids)
    for h in holds_rows:
        wanted.update(int(lot_id) for lot_id, _ in h.allocations)
    if wanted:
        q = sa.select(pt.point_lots).where(
            lt.customer_id == account.customer_id, sa.or_(live, lt.id.in_(wanted))
        )
        rows = uow.conn.execute(q)
    else:
        rows = uow.conn.execute(_LIVE_LOTS, {"cid": account.customer_id})
    lots = {row.id: _lot(row) for row in rows}
    holds = [
        Hold(h.external_id, [(lots[int(lot_id)], int(n)) for lot_id, n in h.allocations], h.state)
        for h in holds_rows
    ]
    return Book(lots.values(), account.balance, holds, negative_policy)


def save_book(
    uow: UnitOfWork,
    account: Account,
    book: Book,
    version: int | None,
    *,
    activity_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
    writes: Writes | None = None,
) -> list[int]:
    """Append the book's new entries, save new and changed lots, refresh the cached balance.

    With ``writes`` the rows are collected for the caller's :meth:`Writes.flush`
    (one round trip on PostgreSQL); without, they are written now.
    """
    conn = uow.conn
    new_lots = [lot for lot in book.lots if lot.id is None]
    lot_rows = []
    for lot in new_lots:
        row = {
            "customer_id": account.customer_id,
            "points": lot.points,
            "remaining": lot.remaining,
            "expired": lot.expired,
            "state": lot.state,
            "earned_at": lot.earned_at,
            "available_at": lot.available_at,
            "expires_at": lot.expires_at,
            "source": lot.source[:200],
        }
        lot.id = writes.take_id(pt.point_lots) if writes is not None else None
        if lot.id is None:
            lot.id = conn.execute(_NEW_LOT, row).scalar_one()
        else:
            lot_rows.append({"id": lot.id, **row})
        lot.dirty = False
    changed = [lot for lot in book.lots if lot.dirty]
    if changed:
        lt = pt.point_lots.c
        conn.execute(
            sa.update(pt.point_lots).where(lt.id == sa.bindparam("lot_id")),
            [
                {
                    "lot_id": lot.id,
                    "remaining": lot.remaining,
                    "state": lot.state,
                    "expired": lot.expired,
                }
                for lot in changed
            ],
        )
        for lot in changed:
            lot.dirty = False
    entry_rows = [_entry_row(account.customer_id, e, version) for e in book.new]
    values: dict[str, Any] = {
        "pending": book.balance.pending,
        "available": book.balance.available,
        "reserved": book.balance.reserved,
        "debt": book.balance.debt,
        "next_due_at": next_due(book.lots, account),
    }
    if activity_at is not None:
        values["last_activity_at"] = activity_at
    values.update(extra or {})
    if writes is not None:
        writes.insert(pt.point_lots, lot_rows)
        writes.insert(pt.ledger_entries, entry_rows)
        writes.update_account(account.customer_id, values)
    else:
        if entry_rows:
            insert_rows(uow, pt.ledger_entries, entry_rows)
        conn.execute(_UPDATE_ACCOUNT, {**values, "b_cid": account.customer_id})
    account.next_due_at = values["next_due_at"]
    book.new = []
    return [lot.id for lot in new_lots if lot.id is not None]


def next_due(lots: Iterable[Lot], account: Account) -> datetime | None:
    """The soonest release or expiry among live lots (``NEVER_DUE`` if none).

    When the writer skipped loading the member's lots, only the new lots are
    in hand, so the stored instant can only move earlier (and stays unknown,
    None, if it was unknown).
    """
    soonest = NEVER_DUE
    for lot in lots:
        if lot.remaining <= 0 or lot.state not in (PENDING, AVAILABLE):
            continue
        if lot.state == PENDING and lot.available_at < soonest:
            soonest = lot.available_at
        if lot.expires_at is not None and lot.expires_at < soonest:
            soonest = lot.expires_at
    if account.lots_loaded:
        return soonest
    if account.next_due_at is None:
        return None
    return min(soonest, account.next_due_at)


def _entry_row(customer_id: int, e: Entry, version: int | None) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "at": e.at,
        "kind": e.kind,
        "lot_id": e.lot.id if e.lot else None,
        "lot_delta": e.lot_delta,
        "pending": e.pending,
        "available": e.available,
        "reserved": e.reserved,
        "debt": e.debt,
        "qualifying_points": e.qualifying_points,
        "qualifying_spend": e.qualifying_spend,
        "reason": e.reason[:500],
        "source": e.source[:200],
        "actor": e.actor,
        "programme_version_id": version,
    }


def save_hold(
    uow: UnitOfWork,
    account: Account,
    hold: Hold,
    now: datetime,
    *,
    order_ref: str | None = None,
    reward_id: int | None = None,
    new: bool,
) -> None:
    alloc = [[lot.id, n] for lot, n in hold.allocations]
    r = pt.point_redemptions
    if new:
        uow.conn.execute(
            sa.insert(r).values(
                external_id=hold.ref,
                customer_id=account.customer_id,
                points=hold.points,
                state=hold.state,
                allocations=alloc,
                order_ref=order_ref,
                reward_id=reward_id,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        uow.conn.execute(
            sa.update(r).where(r.c.external_id == hold.ref).values(state=hold.state, updated_at=now)
        )


def hold_exists(uow: UnitOfWork, ref: str) -> bool:
    return (
        uow.conn.execute(
            sa.select(pt.point_redemptions.c.id).where(pt.point_redemptions.c.external_id == ref)
        ).first()
        is not None
    )
