"""The points ledger of one member: lots, entries and the rules that move points.

Points live in **lots** (one per earning, each with its own release and expiry
instant). Every change is an :class:`Entry` that says how much moved between
the four buckets and out of which lot, with its reason and source, so any
balance can be explained line by line. The :class:`Book` only ever *appends*
entries; balances are the sums of entries, and :meth:`Book.check` proves the
lots and the cached totals agree with them.

Buckets:

* ``pending`` — earned, not yet spendable (sum of pending lots);
* ``available`` — spendable: available lots minus ``debt``; negative only under
  the ``allow_negative`` refund policy;
* ``reserved`` — held for a checkout that has not confirmed yet;
* ``debt`` — points a refund took back after they were spent; later earnings
  repay it first.

Pure: no I/O. The service layer loads a book, calls one method, and writes
the new entries and changed lots in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from kizuna.errors import InsufficientPoints, ValidationError

EARN = "earn"
RELEASE = "release"
RESERVE = "reserve"
UNRESERVE = "unreserve"
CONFIRM = "confirm"
REDEEM = "redeem"
RESTORE = "restore"
EXPIRE = "expire"
REVERSE = "reverse"
ADJUST = "adjust"
REPAY = "repay"
DEBT = "debt"
CLAWBACK = "clawback"
KINDS = (
    EARN,
    RELEASE,
    RESERVE,
    UNRESERVE,
    CONFIRM,
    REDEEM,
    RESTORE,
    EXPIRE,
    REVERSE,
    ADJUST,
    REPAY,
    DEBT,
    CLAWBACK,
)

PENDING = "pending"
AVAILABLE = "available"
EXPIRED = "expired"

#: Far future used to sort lots without expiry after every expiring one.
_NEVER = datetime.max


@dataclass
class Lot:
    """Points from one earning. ``id`` is None until the store has saved it."""

    points: int
    remaining: int
    state: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    source: str
    #: Points of this lot that expired and no refund has accounted for yet.
    expired: int = 0
    id: int | None = None
    dirty: bool = field(default=False, compare=False)

    def sort_key(self) -> tuple[datetime, datetime, int]:
        expires = self.expires_at.replace(tzinfo=None) if self.expires_at else _NEVER
        return (expires, self.earned_at.replace(tzinfo=None), self.id or 0)


@dataclass(frozen=True)
class Entry:
    """One appended line of the ledger: what moved, from which lot, and why."""

    kind: str
    at: datetime
    lot: Lot | None = None
    lot_delta: int = 0
    pending: int = 0
    available: int = 0
    reserved: int = 0
    debt: int = 0
    qualifying_points: int = 0
    qualifying_spend: int = 0
    reason: str = ""
    source: str = ""
    actor: str | None = None


def _split(state: str, n: int) -> tuple[int, int]:
    """``n`` points as (pending, available) deltas for a lot in ``state``."""
    return (n, 0) if state == PENDING else (0, n)


@dataclass
class Hold:
    """Points taken from lots for a redemption, kept so it can be undone exactly."""

    ref: str
    allocations: list[tuple[Lot, int]]
    state: str  # reserved | confirmed | cancelled

    @property
    def points(self) -> int:
        return sum(n for _, n in self.allocations)


@dataclass(frozen=True)
class Balance:
    pending: int = 0
    available: int = 0
    reserved: int = 0
    debt: int = 0

    def plus(self, e: Entry) -> Balance:
        return Balance(
            self.pending + e.pending,
            self.available + e.available,
            self.reserved + e.reserved,
            self.debt + e.debt,
        )


def balance_of(entries: Iterable[Entry]) -> Balance:
    """The balance is by definition the sum of the entries."""
    b = Balance()
    for e in entries:
        b = b.plus(e)
    return b


@dataclass(frozen=True)
class Reversal:
    """What a refund took back: from the order's lot, forgiven as expired, by policy."""

    points: int
    from_lot: int
    already_expired: int
    by_policy: int
    written_off: int


class Book:
    """One member's lots, open holds and running balance; methods append entries."""

    def __init__(
        self,
        lots: Iterable[Lot] = (),
        balance: Balance | None = None,
        holds: Iterable[Hold] = (),
        negative_policy: str = "allow_negative",
    ) -> None:
        self.lots: list[Lot] = list(lots)
        self.holds: dict[str, Hold] = {h.ref: h for h in holds}
        self.balance = balance or Balance()
        self.negative_policy = negative_policy
        self.new: list[Entry] = []

    # ---- bookkeeping ---------------------------------------------------------------
    def _append(self, entry: Entry) -> None:
        if entry.lot is not None and entry.lot_delta:
            entry.lot.remaining += entry.lot_delta
            entry.lot.dirty = True
            assert entry.lot.remaining >= 0, "a lot can never hold negative points"
        self.balance = self.balance.plus(entry)
        self.new.append(entry)

    def spendable(self) -> int:
        return self.balance.available

    def _available_lots(self) -> list[Lot]:
        return sorted(
            (lot for lot in self.lots if lot.state == AVAILABLE and lot.remaining > 0),
            key=Lot.sort_key,
        )

    def _take(
        self,
        points: int,
        kind: str,
        at: datetime,
        source: str,
        reason: str,
        actor: str | None,
        *,
        to_reserved: bool = False,
    ) -> list[tuple[Lot, int]]:
        """Consume available lots soonest-expiring first."""
        taken: list[tuple[Lot, int]] = []
        left = points
        for lot in self._available_lots():
            if left == 0:
                break
            n = min(left, lot.remaining)
            self._append(
                Entry(
                    kind,
                    at,
                    lot,
                    -n,
                    available=-n,
                    reserved=n if to_reserved else 0,
                    reason=reason,
                    source=source,
                    actor=actor,
                )
            )
            taken.append((lot, n))
            left -= n
        assert left == 0, "spendable points did not match the available lots"
        return taken

    def _repay(self, at: datetime) -> None:
        """Later points pay back debt first (the ``allow_negative`` policy)."""
        for lot in self._available_lots():
            if self.balance.debt == 0:
                return
            n = min(self.balance.debt, lot.remaining)
            self._append(
                Entry(
                    REPAY,
                    at,
                    lot,
                    -n,
                    debt=-n,
                    reason="repays points owed from a refund",
                    source=lot.source,
                )
            )

    # ---- operations ------------------------------------------------------------------
    def earn(
        self,
        points: int,
        *,
        at: datetime,
        available_at: datetime,
        expires_at: datetime | None,
        source: str,
        reason: str,
        qualifying_points: int = 0,
        qualifying_spend: int = 0,
        kind: str = EARN,
        actor: str | None = None,
    ) -> Lot:
        """Add a lot; it is pending until ``available_at``."""
        if points < 0:
            raise ValidationError(f"cannot earn a negative number of points ({points})")
        pending = available_at > at
        lot = Lot(
            points, 0, PENDING if pending else AVAILABLE, at, available_at, expires_at, source
        )
        self.lots.append(lot)
        self._append(
            Entry(
                kind,
                at,
                lot,
                points,
                pending=points if pending else 0,
                available=0 if pending else points,
                qualifying_points=qualifying_points,
                qualifying_spend=qualifying_spend,
                reason=reason,
                source=source,
                actor=actor,
            )
        )
        if not pending:
            self._repay(at)
        return lot

    def release(self, now: datetime) -> int:
        """Pending lots whose time has come become available. Idempotent."""
        released = 0
        for lot in sorted(self.lots, key=Lot.sort_key):
            if lot.state == PENDING and lot.available_at <= now:
                lot.state = AVAILABLE
                lot.dirty = True
                self._append(
                    Entry(
                        RELEASE,
                        now,
                        lot,
                        0,
                        pending=-lot.remaining,
                        available=lot.remaining,
                        reason="pending period over",
                        source=lot.source,
                    )
                )
                released += lot.remaining
        if released:
            self._repay(now)
        return released

    def expire(
        self, now: datetime, *, every_lot: bool = False, reason: str = "lot reached its expiry"
    ) -> int:
        """Lots past their expiry lose what remains. Idempotent."""
        expired = 0
        for lot in sorted(self.lots, key=Lot.sort_key):
            due = every_lot or (lot.expires_at is not None and lot.expires_at <= now)
            if lot.state in (PENDING, AVAILABLE) and due:
                n = lot.remaining
                pend, avail = _split(lot.state, -n)
                lot.state = EXPIRED
                lot.expired += n
                lot.dirty = True
                self._append(
                    Entry(EXPIRE, now, lot, -n, pend, avail, reason=reason, source=lot.source)
                )
                expired += n
        return expired

    def reserve(
        self, points: int, ref: str, *, at: datetime, reason: str = "held at checkout"
    ) -> Hold:
        """Hold points for a checkout; confirm or cancel later."""
        self._check_spend(points, ref)
        taken = self._take(points, RESERVE, at, f"redemption:{ref}", reason, None, to_reserved=True)
        hold = Hold(ref, taken, "reserved")
        self.holds[ref] = hold
        return hold

    def confirm(self, ref: str, *, at: datetime) -> Hold:
        hold = self._hold(ref)
        if hold.state == "confirmed":
            return hold
        if hold.state != "reserved":
            raise ValidationError(
                f"redemption {ref} is {hold.state}; only a reserved redemption can be confirmed"
            )
        for lot, n in hold.allocations:
            self._append(
                Entry(
                    CONFIRM,
                    at,
                    lot,
                    0,
                    reserved=-n,
                    reason="checkout confirmed",
                    source=f"redemption:{ref}",
                )
            )
        hold.state = "confirmed"
        return hold

    def redeem(
        self,
        points: int,
        ref: str,
        *,
        at: datetime,
        reason: str = "redeemed",
        actor: str | None = None,
        kind: str = REDEEM,
    ) -> Hold:
        """Spend points at once, soonest-expiring lot first."""
        self._check_spend(points, ref)
        taken = self._take(points, kind, at, f"redemption:{ref}", reason, actor)
        hold = Hold(ref, taken, "confirmed")
        self.holds[ref] = hold
        return hold

    def cancel(self, ref: str, *, at: datetime, reason: str = "redemption cancelled") -> Hold:
        """Give a reserved or confirmed redemption's points back to the lots they came from."""
        hold = self._hold(ref)
        if hold.state == "cancelled":
            return hold
        for lot, n in hold.allocations:
            if hold.state == "reserved":
                self._append(
                    Entry(
                        UNRESERVE,
                        at,
                        lot,
                        n,
                        available=n,
                        reserved=-n,
                        reason=reason,
                        source=f"redemption:{ref}",
                    )
                )
            else:
                self._append(
                    Entry(
                        RESTORE, at, lot, n, available=n, reason=reason, source=f"redemption:{ref}"
                    )
                )
            if lot.state == EXPIRED:
                # The lot lapsed while its points were held: they come back
                # to it and lapse again at once, as they would have.
                self._append(
                    Entry(
                        EXPIRE,
                        at,
                        lot,
                        -n,
                        available=-n,
                        reason="returned to a lot that had expired",
                        source=lot.source,
                    )
                )
                lot.expired += n
        hold.state = "cancelled"
        self._repay(at)
        return hold

    def reverse(
        self,
        lot: Lot,
        points: int,
        *,
        at: datetime,
        source: str,
        reason: str,
        qualifying_points: int = 0,
        qualifying_spend: int = 0,
    ) -> Reversal:
        """Take back ``points`` a refunded purchase earned into ``lot``.

        First from what remains of the lot; points of the lot that already
        expired are not taken twice; the rest was spent, and the programme's
        policy decides: ``allow_negative`` records a debt, ``claw_back``
        takes it from other lots (soonest-expiring first) and writes off
        what cannot be found.
        """
        if points < 0:
            raise ValidationError("cannot reverse a negative number of points")
        from_lot = min(points, lot.remaining)
        pend, avail = _split(lot.state, -from_lot)
        self._append(
            Entry(
                REVERSE,
                at,
                lot,
                -from_lot,
                pend,
                avail,
                qualifying_points=-qualifying_points,
                qualifying_spend=-qualifying_spend,
                reason=reason,
                source=source,
            )
        )
        left = points - from_lot
        forgiven = min(left, lot.expired)
        lot.expired -= forgiven
        if forgiven:
            lot.dirty = True
        left -= forgiven
        by_policy = written_off = 0
        if left and self.negative_policy == "allow_negative":
            self._append(
                Entry(
                    DEBT,
                    at,
                    None,
                    0,
                    available=-left,
                    debt=left,
                    reason=f"{reason}; points already spent are owed",
                    source=source,
                )
            )
            by_policy = left
        elif left:
            for candidate_state in (AVAILABLE, PENDING):
                for other in sorted(
                    (x for x in self.lots if x.state == candidate_state and x.remaining > 0),
                    key=Lot.sort_key,
                ):
                    if not left:
                        break
                    n = min(left, other.remaining)
                    pend, avail = _split(candidate_state, -n)
                    self._append(
                        Entry(
                            CLAWBACK,
                            at,
                            other,
                            -n,
                            pend,
                            avail,
                            reason=f"{reason}; clawed back from another lot",
                            source=source,
                        )
                    )
                    by_policy += n
                    left -= n
            written_off = left
        return Reversal(points, from_lot, forgiven, by_policy, written_off)

    def adjust(
        self,
        points: int,
        *,
        at: datetime,
        actor: str,
        reason: str,
        expires_at: datetime | None,
        source: str = "manual",
    ) -> None:
        """A manual correction by ``actor``; a debit never goes below zero."""
        if not reason.strip():
            raise ValidationError("a manual adjustment needs a reason; pass --reason")
        if points > 0:
            self.earn(
                points,
                at=at,
                available_at=at,
                expires_at=expires_at,
                source=source,
                reason=reason,
                kind=ADJUST,
                actor=actor,
            )
        elif points < 0:
            self._check_spend(-points, source)
            self._take(-points, ADJUST, at, source, reason, actor)
        else:
            raise ValidationError(
                "an adjustment of 0 points changes nothing; give a positive or negative number"
            )

    # ---- checks ------------------------------------------------------------------------
    def _check_spend(self, points: int, ref: str) -> None:
        if points <= 0:
            raise ValidationError(f"points to redeem must be a positive whole number, got {points}")
        if ref in self.holds:
            raise ValidationError(f"redemption {ref} already exists; use a new redemption id")
        if points > self.balance.available:
            raise InsufficientPoints(
                f"{points} points requested but only {max(self.balance.available, 0)} are available"
            )

    def _hold(self, ref: str) -> Hold:
        try:
            return self.holds[ref]
        except KeyError:
            from kizuna.errors import NotFound

            raise NotFound(f"no redemption {ref} for this member") from None

    def check(self, entries: Iterable[Entry] | None = None) -> list[str]:
        """Prove the cached state equals the sum of the entries; returns the problems."""
        problems: list[str] = []
        entries = list(self.new if entries is None else entries)
        b = balance_of(entries)
        pending_lots = sum(x.remaining for x in self.lots if x.state == PENDING)
        avail_lots = sum(x.remaining for x in self.lots if x.state == AVAILABLE)
        if b != self.balance:
            problems.append(f"cached balance {self.balance} != sum of entries {b}")
        if b.pending != pending_lots:
            problems.append(f"pending {b.pending} != pending lots {pending_lots}")
        if b.available != avail_lots - b.debt:
            problems.append(
                f"available {b.available} != available lots {avail_lots} - debt {b.debt}"
            )
        held = sum(h.points for h in self.holds.values() if h.state == "reserved")
        if b.reserved != held:
            problems.append(f"reserved {b.reserved} != open holds {held}")
        for lot in self.lots:
            total = sum(e.lot_delta for e in entries if e.lot is lot)
            if total != lot.remaining:
                problems.append(
                    f"lot {lot.source} remaining {lot.remaining} != its entries {total}"
                )
        if b.debt < 0:
            problems.append(f"negative debt {b.debt}")
        return problems
