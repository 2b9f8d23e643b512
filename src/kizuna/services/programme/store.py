"""Loading a member's book from the database, locking it, and writing back what changed.

The account row is the lock: every write to a member first bumps its
``lock_seq`` with an UPDATE, which holds the row lock on PostgreSQL and the
database write lock on SQLite (the UPDATE is the transaction's first
statement, so SQLite takes its write lock before reading anything, the
same effect as ``BEGIN IMMEDIATE``). Concurrent requests for one member
therefore wait their turn instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain.ledger import AVAILABLE, PENDING, Balance, Book, Entry, Hold, Lot
from kizuna.errors import NotFound, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

#: Longest external id we accept; the column is this wide.
MAX_ID = 128


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


# Hot-path statements are built once: building and cache-keying a statement
# per call costs about as much as running it on a local database.
_CUSTOMER = sa.select(t.customers.c.id).where(t.customers.c.external_id == sa.bindparam("ext"))
_a = pt.point_accounts.c
_LOCK = (
    sa.update(pt.point_accounts)
    .where(_a.customer_id == sa.bindparam("cid"))
    .values(lock_seq=_a.lock_seq + 1)
    .returning(
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
    )
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
    elif len(rows) <= 100:
        uow.conn.execute(sa.insert(table).values(rows))
    elif rows:
        uow.conn.execute(sa.insert(table), rows)


def customer_id_of(uow: UnitOfWork, external_id: str) -> int:
    if not external_id or len(external_id) > MAX_ID:
        raise ValidationError(f"member id must be 1 to {MAX_ID} characters, got {external_id!r}")
    found = uow.conn.execute(_CUSTOMER, {"ext": external_id}).scalar()
    if found is None:
        raise NotFound(f"unknown member {external_id!r}: import or create the customer first")
    return int(found)


def _insert_account(uow: UnitOfWork, customer_id: int, now: datetime) -> None:
    values: dict[str, Any] = {"customer_id": customer_id, "member_since": now}
    stmt: Any
    if uow.dialect == "postgresql":
        stmt = postgresql.insert(pt.point_accounts).values(values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(pt.point_accounts).values(values).on_conflict_do_nothing()
    uow.conn.execute(stmt)


_LOCK_BY_EXTERNAL_ID = (
    sa.update(pt.point_accounts)
    .where(_a.customer_id == t.customers.c.id, t.customers.c.external_id == sa.bindparam("ext"))
    .values(lock_seq=_a.lock_seq + 1)
    .returning(_a.customer_id, *_LOCK.exported_columns)
)


def lock_member(uow: UnitOfWork, external_id: str, now: datetime) -> Account:
    """Find and lock a member by external id in one round trip (the common case)."""
    if not external_id or len(external_id) > MAX_ID:
        raise ValidationError(f"member id must be 1 to {MAX_ID} characters, got {external_id!r}")
    row = uow.conn.execute(_LOCK_BY_EXTERNAL_ID, {"ext": external_id}).first()
    if row is None:  # unknown member (NotFound), or a member without an account yet
        return lock_account(uow, customer_id_of(uow, external_id), external_id, now)
    return _account(int(row.customer_id), external_id, row)


def lock_account(uow: UnitOfWork, customer_id: int, external_id: str, now: datetime) -> Account:
    """Lock the member's account (creating it on first use) and read it."""
    row = uow.conn.execute(_LOCK, {"cid": customer_id}).first()
    if row is None:
        _insert_account(uow, customer_id, now)
        row = uow.conn.execute(_LOCK, {"cid": customer_id}).one()
    return _account(customer_id, external_id, row)


def _account(customer_id: int, external_id: str, row: Any) -> Account:
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
) -> list[int]:
    """Append the book's new entries, save new and changed lots, refresh the cached balance."""
    conn = uow.conn
    new_lots = [lot for lot in book.lots if lot.id is None]
    for lot in new_lots:
        lot.id = conn.execute(
            _NEW_LOT,
            {
                "customer_id": account.customer_id,
                "points": lot.points,
                "remaining": lot.remaining,
                "expired": lot.expired,
                "state": lot.state,
                "earned_at": lot.earned_at,
                "available_at": lot.available_at,
                "expires_at": lot.expires_at,
                "source": lot.source[:200],
            },
        ).scalar_one()
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
    if book.new:
        insert_rows(
            uow, pt.ledger_entries, [_entry_row(account.customer_id, e, version) for e in book.new]
        )
    values: dict[str, Any] = {
        "pending": book.balance.pending,
        "available": book.balance.available,
        "reserved": book.balance.reserved,
        "debt": book.balance.debt,
    }
    if activity_at is not None:
        values["last_activity_at"] = activity_at
    values.update(extra or {})
    values["b_cid"] = account.customer_id
    conn.execute(_UPDATE_ACCOUNT, values)
    book.new = []
    return [lot.id for lot in new_lots if lot.id is not None]


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
