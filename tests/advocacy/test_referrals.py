"""Referrals: stable codes, first-order attribution, fraud checks, rewards exactly once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from tests.advocacy.conftest import T0, customer, order, points_of
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain import referrals as rules
from kizuna.errors import Conflict, NotFound
from kizuna.services import referrals
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import tables as t

DAY = timedelta(days=1)


def uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx.engine, ctx.settings)


def refer(ctx: Context, referrer: str, referee: str, **kw: object) -> dict[str, object]:
    code = referrals.code_for(uow(ctx), referrer, T0)["code"]
    return referrals.capture(uow(ctx), referrals.Capture(referee, code, T0, **kw), T0)[1]  # type: ignore[arg-type]


def status(ctx: Context, referral_id: object) -> dict[str, object]:
    with ctx.engine.connect() as conn:
        return referrals.get_referral(conn, int(referral_id))  # type: ignore[call-overload]


def test_code_is_short_stable_unique_and_linked(ws: Context) -> None:
    customer(ws, "a")
    customer(ws, "b")
    first = referrals.code_for(uow(ws), "a", T0)
    assert referrals.code_for(uow(ws), "a", T0 + DAY) == first
    assert rules.looks_like_code(first["code"])
    assert first["link"] == f"http://127.0.0.1:8080/r/{first['code']}"
    assert referrals.code_for(uow(ws), "b", T0)["code"] != first["code"]
    with pytest.raises(NotFound):
        referrals.code_for(uow(ws), "nobody", T0)


def test_typed_code_is_forgiving_and_unknown_code_is_refused(ws: Context) -> None:
    customer(ws, "a")
    customer(ws, "b")
    code = referrals.code_for(uow(ws), "a", T0)["code"]
    typed = f" {code[:4].lower()}-{code[4:]} "
    status_code, body = referrals.capture(uow(ws), referrals.Capture("b", typed, T0), T0)
    assert (status_code, body["referrer_id"], body["status"]) == (201, "a", "pending")
    again, _ = referrals.capture(uow(ws), referrals.Capture("b", code, T0), T0)
    assert again == 200
    with pytest.raises(NotFound, match="unknown referral code"):
        referrals.capture(uow(ws), referrals.Capture("b", "ZZZZZZZZ", T0), T0)


def test_a_customer_is_referred_once(ws: Context) -> None:
    for ext in ("a", "b", "c"):
        customer(ws, ext)
    refer(ws, "a", "c")
    code_b = referrals.code_for(uow(ws), "b", T0)["code"]
    with pytest.raises(Conflict, match="already referred"):
        referrals.capture(uow(ws), referrals.Capture("c", code_b, T0), T0)


def test_both_sides_rewarded_once_after_the_return_window(ws: Context) -> None:
    a = customer(ws, "a", email="a@example.jp")
    b = customer(ws, "b", email="b@example.jp")
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0 + DAY)
    early = referrals.settle(ws.engine, ws.settings, T0 + 10 * DAY)
    assert (early.qualified, early.rewarded) == (1, 0)
    assert status(ws, ref["referral_id"])["status"] == "qualified"
    assert points_of(ws, a) == points_of(ws, b) == 0
    due = referrals.settle(ws.engine, ws.settings, T0 + 32 * DAY)
    assert due.rewarded == 1
    body = status(ws, ref["referral_id"])
    assert (body["status"], body["reasons"], body["referrer_points"]) == ("rewarded", [], 500)
    assert points_of(ws, a) == points_of(ws, b) == 500
    for _ in range(3):  # re-runs of the scheduled job
        assert referrals.settle(ws.engine, ws.settings, T0 + 40 * DAY).total() == 0
    assert points_of(ws, a) == points_of(ws, b) == 500
    with ws.engine.connect() as conn:
        types = conn.execute(
            sa.select(t.events.c.type, t.events.c.customer_id).where(
                t.events.c.type == "referral_rewarded"
            )
        ).all()
    assert sorted(c for _, c in types) == sorted([a, b])


def test_a_crash_before_commit_leaves_nothing_and_the_retry_rewards_once(ws: Context) -> None:
    a = customer(ws, "a")
    b = customer(ws, "b")
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0)
    referrals.settle(ws.engine, ws.settings, T0 + DAY)  # qualifies
    with uow(ws) as u:  # the worker dies after granting, before committing
        assert referrals.settle_one(u, int(ref["referral_id"]), T0 + 40 * DAY) == "rewarded"  # type: ignore[call-overload]
    assert points_of(ws, a) == points_of(ws, b) == 0
    assert referrals.settle(ws.engine, ws.settings, T0 + 41 * DAY).rewarded == 1
    with uow(ws) as u:  # a late duplicate of the job finds it done
        assert referrals.settle_one(u, int(ref["referral_id"]), T0 + 42 * DAY) is None  # type: ignore[call-overload]
        u.commit()
    assert points_of(ws, a) == points_of(ws, b) == 500


def test_concurrent_settle_runs_reward_each_referral_once(ws: Context) -> None:
    n = 6
    ids = [customer(ws, f"r{i}") for i in range(n)] + [customer(ws, f"e{i}") for i in range(n)]
    for i in range(n):
        refer(ws, f"r{i}", f"e{i}")
        order(ws, f"o{i}", ids[n + i], T0)
    referrals.settle(ws.engine, ws.settings, T0 + DAY)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            referrals.settle(ws.engine, ws.settings, T0 + 40 * DAY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert [points_of(ws, c) for c in ids] == [500] * (2 * n)


def _settled(ws: Context, ref: dict[str, object], settings: object = None) -> dict[str, object]:
    s = settings or ws.settings
    referrals.settle(ws.engine, s, T0 + 40 * DAY)  # type: ignore[arg-type]
    return status(ws, ref["referral_id"])


@pytest.mark.parametrize(
    ("referrer", "referee", "reason"),
    [
        ({"email": "Taro.Yamada+promo@gmail.com"}, {"email": "taroyamada@gmail.com"}, "same_email"),
        ({"phone": "+81 90-1234-5678"}, {"phone": "090(1234)5678"}, "same_phone"),
        (
            {"postal_code": "150-0001", "attributes": {"address": "渋谷区神宮前1-2-3"}},
            {"postal_code": "1500001", "attributes": {"address": "渋谷区神宮前１－２－３"}},
            "same_address",
        ),
    ],
)
def test_self_referral_by_matching_hashed_identity_is_rejected(
    ws: Context, referrer: dict[str, object], referee: dict[str, object], reason: str
) -> None:
    a = customer(ws, "a", **referrer)
    b = customer(ws, "b", **referee)
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0)
    body = _settled(ws, ref)
    assert body["status"] == "rejected"
    assert body["reasons"] == [reason]
    assert points_of(ws, a) == points_of(ws, b) == 0
    with ws.engine.connect() as conn:
        stored = conn.execute(sa.select(at.referral_fingerprints.c.digest)).scalars().all()
    assert stored and all(len(d) == 64 for d in stored)
    plain = {str(v) for v in referee.values()} | {"taroyamada@gmail.com", "09012345678"}
    assert not plain & set(stored)


def test_using_ones_own_code_is_rejected(ws: Context) -> None:
    a = customer(ws, "a")
    ref = refer(ws, "a", "a")
    order(ws, "o1", a, T0)
    assert _settled(ws, ref)["reasons"] == ["self_referral"]
    assert points_of(ws, a) == 0


def test_referee_who_already_bought_is_rejected(ws: Context) -> None:
    a = customer(ws, "a")
    b = customer(ws, "b")
    order(ws, "old", b, T0 - 30 * DAY)
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0 + DAY)
    body = _settled(ws, ref)
    assert (body["status"], body["reasons"]) == ("rejected", ["already_customer"])
    assert points_of(ws, a) == 0


def test_cancelled_first_order_is_rejected(ws: Context) -> None:
    customer(ws, "a")
    b = customer(ws, "b")
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0 + DAY, status="cancelled")
    assert _settled(ws, ref)["reasons"] == ["order_cancelled"]


def test_returned_first_order_is_rejected(ws: Context) -> None:
    customer(ws, "a")
    b = customer(ws, "b")
    ref = refer(ws, "a", "b")
    oid = order(ws, "o1", b, T0 + DAY)
    with ws.engine.begin() as conn:
        add(conn, t.returns, external_id="ret1", order_id=oid, customer_id=b, line_no=1,
            quantity=1, refund_amount=5000, returned_at=T0 + 5 * DAY)  # fmt: skip
    assert _settled(ws, ref)["reasons"] == ["order_returned"]


def test_caps_per_month_and_lifetime(ws: Context) -> None:
    a = customer(ws, "a")
    refs = []
    for i in range(4):
        b = customer(ws, f"b{i}")
        refs.append(refer(ws, "a", f"b{i}"))
        order(ws, f"o{i}", b, T0 + i * DAY)
    capped = dataclasses.replace(ws.settings, referral_cap_per_month=2, referral_cap_lifetime=3)
    referrals.settle(ws.engine, capped, T0 + 40 * DAY)
    got = [status(ws, r["referral_id"]) for r in refs]
    assert [g["status"] for g in got] == ["rewarded", "rewarded", "rejected", "rejected"]
    assert got[2]["reasons"] == got[3]["reasons"] == ["cap_monthly"]
    assert points_of(ws, a) == 1000
    # next month: the lifetime cap of 3 allows one more, then refuses
    for i in (4, 5):
        b = customer(ws, f"b{i}")
        refs.append(refer(ws, "a", f"b{i}"))
        order(ws, f"o{i}", b, T0 + 40 * DAY)
    referrals.settle(ws.engine, capped, T0 + 75 * DAY)
    later = [status(ws, r["referral_id"]) for r in refs[4:]]
    assert [g["status"] for g in later] == ["rewarded", "rejected"]
    assert later[1]["reasons"] == ["cap_lifetime"]


def test_codes_arriving_by_import_are_attributed(ws: Context) -> None:
    a = customer(ws, "a")
    code = referrals.code_for(uow(ws), "a", T0)["code"]
    b = customer(ws, "b", attributes={"referral_code": code.lower()}, signup_at=T0)
    c = customer(ws, "c")
    order(ws, "ob", b, T0 + DAY)
    order(ws, "oc", c, T0 + DAY, coupon_code=code)
    report = referrals.settle(ws.engine, ws.settings, T0 + 2 * DAY)
    assert (report.captured, report.qualified) == (2, 2)
    report = referrals.settle(ws.engine, ws.settings, T0 + 40 * DAY)
    assert report.rewarded == 2
    assert points_of(ws, a) == 1000
    assert points_of(ws, b) == points_of(ws, c) == 500
    with ws.engine.connect() as conn:
        rows = referrals.list_referrals(conn, referrer="a")
        assert sorted(r["source"] for r in rows) == ["order_coupon", "signup_attribute"]
        assert referrals.impact(conn, [a])[a] == {"referred": 2, "rewarded": 2, "revenue": 10000}


def test_imported_referral_rows_are_settled_too(ws: Context) -> None:
    a = customer(ws, "a")
    b = customer(ws, "b")
    with ws.engine.begin() as conn:
        add(conn, t.referrals, external_id="imp1", referrer_id=a, referee_id=b,
            referred_at=T0, code=None)  # fmt: skip
    order(ws, "o1", b, T0 + DAY)
    referrals.settle(ws.engine, ws.settings, T0 + 2 * DAY)
    assert referrals.settle(ws.engine, ws.settings, T0 + 40 * DAY).rewarded == 1
    assert points_of(ws, a) == 500


def test_the_worker_settles_due_referrals(ws: Context) -> None:
    from kizuna.automation.worker import run_worker
    from kizuna.domain.programme import parse_programme
    from kizuna.services.programme import config

    with uow(ws) as u:
        config.apply_programme(u, parse_programme({}), "test")
        u.commit()
    a = customer(ws, "a")
    b = customer(ws, "b")
    ref = refer(ws, "a", "b")
    order(ws, "o1", b, T0)
    run_worker(ws, once=True, clock=lambda: T0 + 20 * DAY, worker_id="w1")
    assert status(ws, ref["referral_id"])["status"] == "qualified"  # inside the return window
    for _ in range(2):
        run_worker(ws, once=True, clock=lambda: T0 + 40 * DAY, worker_id="w1")
    assert status(ws, ref["referral_id"])["status"] == "rewarded"
    assert points_of(ws, a) == points_of(ws, b) == 500
