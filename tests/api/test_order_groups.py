"""Group commit of the till's earn calls: the same answers and effects as one call at a time.

Each test runs on SQLite and PostgreSQL (group commit is on by default for
PostgreSQL only, but the mechanism is the same and is tested on both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.api.apiclient import add_members, make_key
from tests.conftest import POSTGRES_URL, _reset_postgres

from kizuna.api import create_app
from kizuna.api import orders as orders_api
from kizuna.bootstrap import Context
from kizuna.domain.programme import parse_programme
from kizuna.errors import KizunaError
from kizuna.services.programme import config, coupons, group_commit
from kizuna.services.programme.checks import check_all
from kizuna.services.programme.group_commit import Result, record_group
from kizuna.services.programme.idempotency import Idem
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.programme.redemptions import Redeem, redeem
from kizuna.services.programme.refunds import RefundOrder, refund
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
MEMBERS = 6

#: Every feature of an earn the group must reproduce: caps per day, the
#: first-purchase reward, automatic sign-up points, tiers (with a multiplier
#: and upgrades, so webhook outbox rows and journey events), frequency
#: vouchers, coupons, and a member with a refund debt.
PROGRAMME = {
    "earning": {"base_points": 1, "per_amount": 100, "cap_per_day": 900},
    "actions": {"first_purchase": 50, "signup": 10},
    "enrolment": {"automatic_signup": True},
    "frequency": {"orders": 3, "days": 30, "voucher_kind": "fixed", "voucher_value": 200},
    "tiers": {
        "basis": "points",
        "levels": [
            {"name": "member", "threshold": 0},
            {"name": "silver", "threshold": 300},
            {"name": "gold", "threshold": 1500, "multiplier": 1.5},
        ],
    },
}
#: The till's common case, which a group writes set-based on PostgreSQL:
#: tiers (upgrades announce themselves), first purchase, automatic sign-up;
#: the stream's coupons and the member who owes points still go one by one.
TILL = {
    "actions": {"first_purchase": 50, "signup": 10},
    "enrolment": {"automatic_signup": True},
    "tiers": PROGRAMME["tiers"],
}
#: Columns filled from the wall clock rather than the call's ``now``.
VOLATILE = {"created_at", "updated_at", "applied_at", "imported_at"}


def _apply(ctx: Context, doc: dict[str, Any]) -> None:
    config.forget_cache()
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        config.apply_programme(uow, parse_programme(doc), "test")
        uow.commit()


def _solo(ctx: Context) -> Any:
    def solo(cmd: RecordOrder, now: datetime | None) -> Result:
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            return record_order(uow, cmd, now)

    return solo


def _open(ctx: Context) -> Any:
    @contextmanager
    def open_uow() -> Iterator[UnitOfWork]:
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            yield uow

    return open_uow


def _fresh(backend: str, path: Path) -> Context:
    if backend == "postgresql":
        _reset_postgres(POSTGRES_URL)
        return init_workspace(path, database_url=POSTGRES_URL)
    return init_workspace(path)


def _prepare(ctx: Context, programme: dict[str, Any]) -> None:
    """Members, the programme, coupons, and member 5 owing points after a refund."""
    add_members(ctx, MEMBERS)
    _apply(ctx, programme)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        for i in range(8):
            coupons.generate(uow, count=1, kind="fixed", value=100, batch="t", code=f"C-{i}")
        uow.commit()
    solo = _solo(ctx)
    solo(RecordOrder("D1", "M00005", (OrderLine(1, 40_000),)), T0)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        redeem(uow, Redeem("M00005", 400, "DR1"), T0 + timedelta(minutes=1))
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        refund(uow, RefundOrder("D1", "DF1"), T0 + timedelta(minutes=2))


def _stream(seed: int = 7, n: int = 64) -> list[tuple[RecordOrder, datetime]]:
    rnd = random.Random(seed)
    out = []
    coupon = iter(range(8))
    for i in range(n):
        lines = tuple(
            OrderLine(j, rnd.choice([300, 1200, 5_000, 25_000]), product=None)
            for j in range(1, rnd.randint(1, 3) + 1)
        )
        code = f"C-{next(coupon)}" if i % 8 == 3 else None
        cmd = RecordOrder(
            f"O{i}",
            f"M{rnd.randrange(MEMBERS):05d}",
            lines,
            coupon_code=code,
            idem=Idem(f"k{i}", f"h{i}"),
        )
        out.append((cmd, T0 + timedelta(hours=1 + i // 16, seconds=i)))
    return out


def _groups(stream: list[Any], size: int = 8) -> list[list[Any]]:
    """The stream cut into groups, each in the order a group writes it (by member, stable)."""
    return [
        sorted(stream[i : i + size], key=lambda item: item[0].member_id)
        for i in range(0, len(stream), size)
    ]


def _snapshot(ctx: Context) -> str:
    """Every row of every table as one comparable text: clock columns left out, and
    surrogate ids replaced by what they point to (the order's and the lot's source),
    since a group writes its set-based calls before the ones it runs one by one."""
    out: dict[str, list[Any]] = {}
    with ctx.engine.connect() as conn:
        orders = dict(conn.execute(sa.select(t.orders.c.id, t.orders.c.external_id)).all())
        lots = dict(conn.execute(sa.select(pt.point_lots.c.id, pt.point_lots.c.source)).all())
        for table in t.metadata.sorted_tables:
            if table.name in ("programme_versions", "api_keys", "alembic_version"):
                continue
            cols = [c for c in table.c if c.name not in VOLATILE and c.name != "id"]
            rows = []
            for r in conn.execute(sa.select(*cols)):
                row = dict(zip([c.name for c in cols], r, strict=True))
                if isinstance(row.get("order_id"), int):
                    row["order_id"] = orders[row["order_id"]]
                if isinstance(row.get("lot_id"), int):
                    row["lot_id"] = lots[row["lot_id"]]
                rows.append(json.dumps({k: str(v) for k, v in row.items()}, sort_keys=True))
            out[table.name] = sorted(rows)
    return json.dumps(out, sort_keys=True)


def _numbered_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Voucher codes from a counter, so two runs of one stream draw the same codes."""
    numbers = itertools.count()
    monkeypatch.setattr(coupons, "new_code", lambda prefix="": f"V{next(numbers):06d}")


@pytest.mark.parametrize("programme", ["every feature", "till"])
def test_groups_write_exactly_what_one_call_at_a_time_writes(
    backend: str, programme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    doc = PROGRAMME if programme == "every feature" else TILL
    one_call = []  # the orders a group ran through the one-call code
    real = group_commit.record_order

    def counted(uow: UnitOfWork, cmd: RecordOrder, *args: Any, **kw: Any) -> Result:
        one_call.append(cmd.order_id)
        return real(uow, cmd, *args, **kw)

    monkeypatch.setattr(group_commit, "record_order", counted)
    stream = _stream()
    answers: list[list[Any]] = []
    snapshots = []
    for run in ("one by one", "in groups"):
        _numbered_codes(monkeypatch)
        ctx = _fresh(backend, tmp_path / run.replace(" ", "_"))
        try:
            _prepare(ctx, doc)
            got: list[Any] = []
            for group in _groups(stream):
                if run == "one by one":
                    solo = _solo(ctx)
                    got += [solo(cmd, now) for cmd, now in group]
                else:
                    solo_calls: list[str] = []

                    def solo(cmd: RecordOrder, now: datetime | None, ctx: Context = ctx) -> Result:
                        solo_calls.append(cmd.order_id)  # noqa: B023 - read at once
                        return _solo(ctx)(cmd, now)

                    got += record_group(_open(ctx), solo, group)
                    assert solo_calls == [], "a feature fell back to the one-call path"
            answers.append(got)
            snapshots.append(_snapshot(ctx))
            with UnitOfWork(ctx.engine, ctx.settings) as uow:
                assert check_all(uow) == []
        finally:
            config.forget_cache()
            ctx.dispose()
    assert answers[0] == answers[1]
    bodies = [b for _, b in answers[1]]
    # the stream does exercise what it claims to
    assert any(b["tier_changed"] for b in bodies)
    assert programme == "till" or any(b["voucher"] for b in bodies)
    if programme == "till" and backend == "postgresql":
        # set-based: every member's first call in each group of 8 (6 members),
        # unless it enrols the member, uses a coupon, or is member 5's (a debt)
        assert len(stream) - len(one_call) >= 25, one_call
    else:
        assert len(one_call) == len(stream)
    assert any(b["coupon_discount"] for b in bodies) and any(
        b["first_purchase_bonus"] for b in bodies
    )
    assert snapshots[0] == snapshots[1]


@pytest.fixture
def ctx(workspace: Context) -> Iterator[Context]:
    config.forget_cache()
    add_members(workspace, 4)
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        coupons.generate(uow, count=1, kind="fixed", value=100, batch="t", code="USED-1")
        uow.commit()
    yield workspace
    config.forget_cache()


def _order(order_id: str, member: str = "M00000", amount: int = 1000, **kw: Any) -> RecordOrder:
    key = kw.pop("key", "k-" + order_id)
    body_hash = kw.pop("body_hash", "h-" + order_id)
    return RecordOrder(order_id, member, (OrderLine(1, amount),), idem=Idem(key, body_hash), **kw)


def test_a_refused_order_fails_no_other_caller_and_gets_its_own_answer(ctx: Context) -> None:
    solo_calls: list[str] = []
    base = _solo(ctx)

    def solo(cmd: RecordOrder, now: datetime | None) -> Result:
        solo_calls.append(cmd.order_id)
        return base(cmd, now)

    base(_order("FIRST", coupon_code="USED-1"), None)  # the coupon is used now
    items: list[tuple[RecordOrder, datetime | None]] = [
        (_order("A1"), None),
        (_order("A2", "M00001", coupon_code="USED-1"), None),  # refused under the lock
        (_order("A3", "NOBODY"), None),  # screened out: unknown member
        (_order("A4", "M00002", amount=-5), None),  # screened out: bad line
        (_order("A5", "M00003"), None),
        (_order("A6", "M00003", key="k-A5", body_hash="h-A5"), None),  # same key, same body
        (_order("A7", "M00002", key="k-A1", body_hash="other"), None),  # same key, other body
        (_order("A8", "M00001"), None),
    ]
    outcomes = record_group(_open(ctx), solo, items)
    status = [o[0] if isinstance(o, tuple) else type(o).__name__ for o in outcomes]
    assert status == [
        201,
        "ValidationError",
        "NotFound",
        "ValidationError",
        201,
        201,
        "Conflict",
        201,
    ]
    assert "coupon" in str(outcomes[1]) and "NOBODY" in str(outcomes[2])
    first, replayed = outcomes[4], outcomes[5]
    assert isinstance(first, tuple) and isinstance(replayed, tuple)
    assert replayed[1] == first[1]  # the second call with A5's key got A5's answer
    # Only the refused calls went alone; the group (written again once) took the rest.
    assert sorted(solo_calls) == ["A2", "A3", "A4", "A7"]
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        orders = set(uow.conn.execute(sa.select(t.orders.c.external_id)).scalars())
        assert orders == {"FIRST", "A1", "A5", "A8"}
        assert check_all(uow) == []
    # Each refusal is the one the call gets alone.
    for i in (1, 2, 3, 6):
        with pytest.raises(KizunaError) as alone:
            base(*items[i])
        assert type(alone.value) is type(outcomes[i]) and str(alone.value) == str(outcomes[i])


def test_a_stored_key_replays_and_a_failed_transaction_sends_every_call_alone(ctx: Context) -> None:
    base = _solo(ctx)
    stored = base(_order("S1"), None)
    opened = 0

    @contextmanager
    def flaky() -> Iterator[UnitOfWork]:
        nonlocal opened
        opened += 1
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            yield uow
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))

    items: list[tuple[RecordOrder, datetime | None]] = [
        (_order("S1"), None),
        (_order("S2", "M00001"), None),
        (_order("S3", "M00002"), None),
    ]
    outcomes = record_group(flaky, base, items)
    assert opened == 1
    assert outcomes[0] == stored
    assert [o[0] for o in outcomes if isinstance(o, tuple)] == [201, 201, 201]
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 3
        assert check_all(uow) == []


def test_concurrent_http_calls_share_groups_and_each_gets_its_answer(ctx: Context) -> None:
    key = make_key(ctx, "pos")
    grouped = Context(dataclasses.replace(ctx.settings, earn_group_commit="on"))
    app = create_app(grouped)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def send(i: int) -> httpx.Response:
                body = {
                    "order_id": f"H{i}",
                    "member_id": f"M0000{i % 4}",
                    "lines": [{"amount": 1000 + i}],
                }
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"hk{i}"}
                return await client.post("/v1/orders", json=body, headers=headers)

            first = await send(0)  # the key is verified and cached once
            return [first, *await asyncio.gather(*(send(i) for i in range(1, 40)))]

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [201] * 40
    assert [r.json()["points"] for r in responses] == [(1000 + i) // 100 for i in range(40)]
    writer = orders_api.group_writer(grouped)
    assert writer is not None and max(writer.sizes) > 1 and sum(writer.sizes) == 40
    grouped.dispose()
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 40
        assert check_all(uow) == []


def test_a_groups_read_probes_each_call_by_index_however_many_orders_a_shop_has(
    workspace: Context, backend: str
) -> None:
    """The group's one read must cost per call, not per order ever recorded.

    PostgreSQL may plan a correlated ``EXISTS`` as a hashed subplan that reads
    the whole table for every group: with ~16,000 orders that made the read
    15 times dearer than the write, and it grows with the shop's history.
    """
    if backend != "postgresql":
        pytest.skip("the plan is PostgreSQL's; SQLite groups go one call at a time")
    from psycopg.types.json import Jsonb
    from sqlalchemy.dialects import postgresql

    from kizuna.services.programme.group_writes import _build_writes, _group_reads

    add_members(workspace, 300)
    with workspace.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO ledger_entries (customer_id, at, kind, reason, source) "
            "SELECT id, now(), 'earn', 'r', 's' FROM customers, generate_series(1, 100)"
        )
        conn.exec_driver_sql(
            "INSERT INTO orders (external_id, customer_id, ordered_at, total_amount) "
            "SELECT 'O' || n, (SELECT min(id) FROM customers), now(), 100 "
            "FROM generate_series(1, 30000) n"
        )
        conn.exec_driver_sql(
            "INSERT INTO idempotency_keys (key, request_hash, status_code, response, created_at) "
            "SELECT 'K' || n, 'h', 201, '{}', now() FROM generate_series(1, 30000) n"
        )
        conn.exec_driver_sql("ANALYZE orders; ANALYZE idempotency_keys; ANALYZE ledger_entries")
    reads = [
        {"i": i, "cid": 1, "ik": f"new-{i}", "ext": f"new-{i}", "start": T0, "end": T0}
        for i in range(16)
    ]
    for first, basis in itertools.product((True, False), ("points", "spend", "orders")):
        compiled = _group_reads(first, basis).compile(dialect=postgresql.dialect())
        params = {**compiled.params, "r_rows": Jsonb(json.loads(json.dumps(reads, default=str)))}
        with workspace.engine.connect() as conn:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
        for table in ("orders", "idempotency_keys", "ledger_entries"):
            assert f"Seq Scan on {table}" not in plan, plan
        assert "hashed" not in plan, plan
        # The tier window by date: a member's entries outside it are not visited.
        assert "ix_ledger_entries_customer_id_at" in plan, plan

    # The group's write updates its accounts by key, not by reading them all.
    with workspace.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customers (external_id, signup_at) "
            "SELECT 'X' || n, now() FROM generate_series(1, 10000) n"
        )
        conn.exec_driver_sql(
            "INSERT INTO point_accounts (customer_id, member_since, next_due_at) "
            "SELECT id, now(), now() FROM customers"
        )
        conn.exec_driver_sql("ANALYZE point_accounts")
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM customers LIMIT 16")]
    columns = ("external_id", "customer_id", "ordered_at", "total_amount")
    compiled = _build_writes((("orders", columns, ()),)).compile(dialect=postgresql.dialect())
    account = dict.fromkeys(("pending", "available", "reserved", "debt"), 0)
    account |= dict.fromkeys(("next_due_at", "last_activity_at", "tier_since"), T0.isoformat())
    account |= {"tier": "member", "tier_review_at": None}
    params = {
        **compiled.params,
        "r0_rows": Jsonb([]),
        "d_rows": Jsonb([{"customer_id": i, **account} for i in ids]),
        "d_ids": ids,
    }
    with workspace.engine.connect() as conn:
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
    assert "Seq Scan on point_accounts" not in plan, plan
