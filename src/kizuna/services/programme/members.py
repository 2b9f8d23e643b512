"""One member's view: the locked book for writers, summaries and the explained ledger for readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain import schedule
from kizuna.domain.ledger import Balance, Book
from kizuna.domain.programme import Programme
from kizuna.domain.tiers import progress
from kizuna.errors import NotFound, ValidationError
from kizuna.services.programme import config
from kizuna.services.programme.store import (
    MAX_ID,
    Account,
    account_of_row,
    customer_id_of,
    load_book,
    lock_account,
    lock_member,
    read_account,
)
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

#: "Expiring soon" means within this many days unless the caller asks otherwise.
EXPIRING_SOON_DAYS = 30
MAX_PAGE = 500


@dataclass
class Opened:
    """A member's account, locked, with the book brought up to ``now``."""

    account: Account
    book: Book
    active: config.ActiveProgramme
    #: The customer who acted (bought, redeemed). The same as the account's
    #: owner, except in a pooled B2B programme, where the account is the pool.
    actor_id: int = 0


def open_member(
    uow: UnitOfWork,
    customer_id: int | None,
    external_id: str,
    now: datetime,
    *,
    lot_ids: tuple[int, ...] = (),
    hold_refs: tuple[str, ...] = (),
    need_lots: bool = True,
) -> Opened:
    """Lock, load, and apply any release or expiry that fell due since the last write.

    Applying them here means a member never sees, nor spends, points whose
    status changed while the scheduled job had not run yet. A writer that
    only adds points (``need_lots=False``) skips loading the lots when the
    account row proves nothing is due before ``now`` and no debt waits to be
    repaid: one comparison instead of reading every live lot.
    """
    active = config.active_programme(uow)
    programme = active.programme
    actor_id = customer_id
    if programme.pool == "account":
        actor_id, customer_id, external_id = pool_holder(uow, customer_id, external_id, now)
    if customer_id is None:
        account = lock_member(uow, external_id, now)
    else:
        account = lock_account(uow, customer_id, external_id, now)
    deadline = schedule.inactivity_deadline(
        programme, account.last_activity_at or account.member_since
    )
    inactive = deadline is not None and deadline <= now
    if (
        not need_lots
        and not inactive
        and account.next_due_at is not None
        and now < account.next_due_at
        and account.balance.debt == 0
    ):
        account.lots_loaded = False
        book = Book((), account.balance, (), programme.negative_policy)
    else:
        book = load_book(
            uow, account, programme.negative_policy, lot_ids=lot_ids, hold_refs=hold_refs
        )
        book.release(now)
        book.expire(now)
        if inactive:
            book.expire(now, every_lot=True, reason="no activity for the inactivity period")
    if account.created:
        signup_reward(book, programme, now)
    return Opened(account, book, active, actor_id or account.customer_id)


_c = t.customers.c
_pp = pt.point_pools.c
_HOLDER = sa.select(_c.id, _c.account_id, _pp.customer_id.label("holder")).select_from(
    t.customers.outerjoin(pt.point_pools, _pp.account_id == _c.account_id)
)


def pool_holder(
    uow: UnitOfWork, customer_id: int | None, external_id: str, now: datetime
) -> tuple[int, int, str]:
    """(the contact, the pool's holder id, the holder's external id) in a pooled programme.

    Points of every contact of a company (``customers.account_id``) live in
    one account: that of the contact who first used the pool, fixed in
    ``point_pools``. A customer without a company keeps their own account.
    """
    q = _HOLDER.where(_c.id == customer_id if customer_id else _c.external_id == external_id)
    row = uow.conn.execute(q).first()
    if row is None:
        customer_id_of(uow, external_id)  # raises the clear "unknown member"
        raise AssertionError("unreachable")
    if row.account_id is None:
        return int(row.id), int(row.id), external_id
    holder = row.holder
    if holder is None:
        insert = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
        uow.conn.execute(
            insert(pt.point_pools)
            .values(account_id=row.account_id, customer_id=row.id, created_at=now)
            .on_conflict_do_nothing(index_elements=["account_id"])
        )
        holder = uow.conn.execute(
            sa.select(_pp.customer_id).where(_pp.account_id == row.account_id)
        ).scalar_one()
    holder_ext = (
        external_id
        if holder == row.id and customer_id is None
        else uow.conn.execute(sa.select(_c.external_id).where(_c.id == holder)).scalar_one()
    )
    return int(row.id), int(holder), holder_ext


def wallet_of(uow: UnitOfWork, member: str, now: datetime | None = None) -> tuple[int, str]:
    """The customer id and external id whose account holds ``member``'s points (readers)."""
    programme = config.active_programme(uow).programme
    if programme.pool != "account":
        return customer_id_of(uow, member), member
    _, holder, holder_ext = pool_holder(uow, None, member, now or datetime.now(UTC))
    return holder, holder_ext


#: The source of the automatic sign-up reward; one per member, ever.
SIGNUP_SOURCE = "action:signup:enrolment"


def signup_reward(book: Book, programme: Programme, now: datetime) -> int:
    """The ``signup`` action's points, granted in the transaction that enrols the member.

    Enrolment (creating the account row) happens exactly once per member,
    whichever request or job does it, so the reward cannot be granted twice.
    """
    points = programme.actions.get("signup")
    if not programme.automatic_signup or not points:
        return 0
    book.earn(
        points,
        at=now,
        available_at=schedule.available_at(programme, now),
        expires_at=schedule.expires_at(programme, now),
        source=SIGNUP_SOURCE,
        reason="reward for signup (enrolment)",
    )
    return points


def balance_dict(b: Balance) -> dict[str, int]:
    return {"available": b.available, "pending": b.pending, "reserved": b.reserved, "owed": b.debt}


_e = pt.ledger_entries.c
_WINDOW = (
    _e.customer_id == sa.bindparam("cid"),
    _e.at >= sa.bindparam("start"),
    _e.at < sa.bindparam("end"),
)
_QUALIFYING = {
    "spend": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_spend), 0)).where(*_WINDOW),
    "orders": sa.select(sa.func.count()).where(
        *_WINDOW, _e.kind == "earn", _e.qualifying_spend > 0
    ),
    "points": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_points), 0)).where(*_WINDOW),
}


def qualifying(
    uow: UnitOfWork, customer_id: int, basis: str, start: datetime, end: datetime
) -> int:
    """Qualifying points, spend or orders in [start, end): kept apart from spendable points."""
    params = {"cid": customer_id, "start": start, "end": end}
    return int(uow.conn.execute(_QUALIFYING[basis], params).scalar_one())


_ac = pt.point_accounts.c
#: The member and their account (if enrolled) in one round trip.
_MEMBER_ACCOUNT = sa.select(
    t.customers.c.id.label("cid"),
    _ac.customer_id,
    _ac.pending,
    _ac.available,
    _ac.reserved,
    _ac.debt,
    _ac.tier,
    _ac.tier_since,
    _ac.tier_review_at,
    _ac.member_since,
    _ac.last_activity_at,
    _ac.birthday_year,
    _ac.next_due_at,
).select_from(t.customers.outerjoin(pt.point_accounts, _ac.customer_id == t.customers.c.id))


def _with_qualifying(basis: str) -> sa.Select[Any]:
    """:data:`_MEMBER_ACCOUNT` plus the qualifying total of a window known beforehand."""
    window = (
        _e.customer_id == t.customers.c.id,
        _e.at >= sa.bindparam("start"),
        _e.at < sa.bindparam("end"),
    )
    total = {
        "spend": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_spend), 0)).where(*window),
        "orders": sa.select(sa.func.count()).where(
            *window, _e.kind == "earn", _e.qualifying_spend > 0
        ),
        "points": sa.select(sa.func.coalesce(sa.func.sum(_e.qualifying_points), 0)).where(*window),
    }[basis]
    return _MEMBER_ACCOUNT.add_columns(total.scalar_subquery().label("qualifying")).where(
        t.customers.c.external_id == sa.bindparam("ext")
    )


_MEMBER_BY_EXTERNAL_ID = _MEMBER_ACCOUNT.where(t.customers.c.external_id == sa.bindparam("ext"))
_MEMBER_WITH_QUALIFYING = {basis: _with_qualifying(basis) for basis in _QUALIFYING}


def _read_member(
    uow: UnitOfWork, member: str, programme: Programme, now: datetime
) -> tuple[int, Account | None, int | None]:
    """(customer id, account or None, qualifying total if already known) of a member.

    The hot path of :func:`summary`: one statement finds the member, reads
    the account and, when the tier window does not depend on the member
    (calendar year, rolling days), sums the qualifying activity too.
    """
    if not member or len(member) > MAX_ID:
        raise ValidationError(f"member id must be 1 to {MAX_ID} characters, got {member!r}")
    known_window = programme.tier_window != "anniversary"
    if known_window:
        start, end = schedule.tier_window(programme, now, now)
        query = _MEMBER_WITH_QUALIFYING[programme.tier_basis]
        row = uow.conn.execute(query, {"ext": member, "start": start, "end": end}).first()
    else:
        row = uow.conn.execute(_MEMBER_BY_EXTERNAL_ID, {"ext": member}).first()
    if row is None:
        raise NotFound(f"unknown member {member!r}: import or create the customer first")
    if row.customer_id is None:
        return int(row.cid), None, None
    account = account_of_row(int(row.cid), member, row)
    return int(row.cid), account, int(row.qualifying) if known_window else None


def summary(
    uow: UnitOfWork, member: str, now: datetime | None = None, soon_days: int = EXPIRING_SOON_DAYS
) -> dict[str, Any]:
    """Available, pending, expiring soon, tier and progress: what a member page shows.

    One statement in the common case (a member's own points, nothing due
    before the "expiring soon" horizon): the account row's ``next_due_at``
    is never later than the soonest release or expiry of a live lot, so when
    it lies beyond the horizon no lot can be released, expire or be listed
    as expiring soon, and the stored balance is the member's balance.
    """
    now = now or datetime.now(UTC)
    active = config.active_programme(uow)
    programme = active.programme
    horizon = now + timedelta(days=soon_days)
    known: int | None = None
    if programme.pool == "account":
        customer_id, holder = wallet_of(uow, member, now)
        account = read_account(uow, customer_id, holder)
    else:
        customer_id, account, known = _read_member(uow, member, programme, now)
    if account is None:
        return {
            "member_id": member,
            "balance": balance_dict(Balance()),
            "expiring_soon": [],
            "tier": None,
            "progress": None,
            "point_name": programme.point_name,
        }
    if account.next_due_at is not None and account.next_due_at > horizon:
        book = Book((), account.balance, (), programme.negative_policy)
    else:
        book = load_book(uow, account, programme.negative_policy)
        book.release(now)
        book.expire(now)
    soon = [
        {"points": lot.remaining, "expires_at": lot.expires_at.isoformat(), "source": lot.source}
        for lot in sorted(book.lots, key=lambda x: x.sort_key())
        if lot.state in ("pending", "available")
        and lot.remaining > 0
        and lot.expires_at is not None
        and lot.expires_at <= horizon
    ]
    start, end = schedule.tier_window(programme, now, account.member_since)
    q = (
        known
        if known is not None
        else qualifying(uow, customer_id, programme.tier_basis, start, end)
    )
    p = progress(programme, account.tier, q)
    return {
        "member_id": member,
        "point_name": programme.point_name,
        "balance": balance_dict(book.balance),
        "expiring_soon": soon,
        "tier": account.tier,
        "progress": {
            "basis": programme.tier_basis,
            "qualifying": p.qualifying,
            "next_tier": p.next_tier,
            "needed": p.needed,
            "benefits": list(p.benefits),
            "window_start": start.isoformat(),
        },
    }


def ledger_page(
    uow: UnitOfWork, member: str, *, limit: int = 50, before: int | None = None
) -> dict[str, Any]:
    """Newest-first entries with their explanations; ``next`` pages further back."""
    if not 1 <= limit <= MAX_PAGE:
        from kizuna.errors import ValidationError

        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    customer_id, _ = wallet_of(uow, member)
    e = pt.ledger_entries.c
    q = sa.select(pt.ledger_entries).where(e.customer_id == customer_id)
    if before is not None:
        q = q.where(e.id < before)
    rows = list(uow.conn.execute(q.order_by(e.id.desc()).limit(limit + 1)))
    items = [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "kind": r.kind,
            "lot_id": r.lot_id,
            "pending": r.pending,
            "available": r.available,
            "reserved": r.reserved,
            "owed": r.debt,
            "qualifying_points": r.qualifying_points,
            "qualifying_spend": r.qualifying_spend,
            "reason": r.reason,
            "source": r.source,
            "actor": r.actor,
            "programme_version": r.programme_version_id,
        }
        for r in rows[:limit]
    ]
    return {
        "member_id": member,
        "items": items,
        "next_before": rows[limit - 1].id if len(rows) > limit else None,
    }
