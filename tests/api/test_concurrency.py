"""Concurrency and crash safety against a real uvicorn process on PostgreSQL (and SQLite)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
from tests.api.apiclient import add_members, make_key
from tests.api.server import Server

from kizuna.bootstrap import Context
from kizuna.services.programme.checks import check_all
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

pytestmark = pytest.mark.slow


@pytest.fixture
def server(workspace: Context) -> Iterator[tuple[Server, dict[str, str]]]:
    add_members(workspace, 3)
    key = make_key(workspace, "admin")
    srv = Server(workspace.settings.workspace, workers=2)
    srv.start()
    try:
        yield srv, {"Authorization": f"Bearer {key}"}
    finally:
        srv.stop()


def _post(url: str, body: object, headers: dict[str, str], key: str) -> httpx.Response:
    return httpx.post(url, json=body, headers={**headers, "Idempotency-Key": key}, timeout=60)


def test_fifty_concurrent_redemptions_never_overspend(
    server: tuple[Server, dict[str, str]], workspace: Context
) -> None:
    srv, auth = server
    r = _post(
        f"{srv.url}/v1/orders",
        {"order_id": "BIG", "member_id": "M00000", "lines": [{"amount": 100_000}]},
        auth,
        "e1",
    )
    assert r.status_code == 201 and r.json()["balance"]["available"] == 1000
    barrier = threading.Barrier(50)

    def redeem(i: int) -> int:
        barrier.wait()
        body = {"redemption_id": f"R{i}", "points": 30}
        return _post(f"{srv.url}/v1/members/M00000/redemptions", body, auth, f"r{i}").status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(redeem, range(50)))
    assert codes.count(201) == 33 and codes.count(422) == 17, codes  # 33 * 30 = 990 <= 1000
    summary = httpx.get(f"{srv.url}/v1/members/M00000", headers=auth).json()
    assert summary["balance"]["available"] == 10
    with workspace.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.sum(pt.ledger_entries.c.available))).scalar()
    assert total == 10
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        assert check_all(uow) == []


def test_one_key_sent_a_hundred_times_at_once_has_one_effect(
    server: tuple[Server, dict[str, str]], workspace: Context
) -> None:
    srv, auth = server
    barrier = threading.Barrier(100)
    body = {"order_id": "ONCE", "member_id": "M00001", "lines": [{"amount": 5000}]}

    def send(_: int) -> tuple[int, str]:
        barrier.wait()
        r = _post(f"{srv.url}/v1/orders", body, auth, "the-one-key")
        return r.status_code, r.text

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(send, range(100)))
    assert {code for code, _ in results} == {201}, results[:3]
    assert len({json.dumps(json.loads(text), sort_keys=True) for _, text in results}) == 1
    with workspace.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pt.point_lots)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 1


def test_sigkill_mid_load_loses_no_acknowledged_call_and_duplicates_none(
    server: tuple[Server, dict[str, str]], workspace: Context
) -> None:
    srv, auth = server
    acknowledged: set[str] = set()
    sent: list[str] = [f"K{i:04d}" for i in range(200)]
    stop = threading.Event()

    def worker(keys: list[str]) -> None:
        for k in keys:
            if stop.is_set():
                return
            body = {
                "order_id": k,
                "member_id": f"M0000{int(k[1:]) % 3}",
                "lines": [{"amount": 1000}],
            }
            try:
                r = _post(f"{srv.url}/v1/orders", body, auth, k)
            except httpx.TransportError:
                continue
            if r.status_code == 201:
                acknowledged.add(k)

    threads = [threading.Thread(target=worker, args=(sent[i::8],)) for i in range(8)]
    for th in threads:
        th.start()
    while len(acknowledged) < 30:
        threading.Event().wait(0.01)
    srv.kill()
    stop.set()
    for th in threads:
        th.join()
    srv.start()

    # Retry everything, acknowledged or not, with the same keys: nothing may earn twice.
    def retry(k: str) -> int:
        body = {"order_id": k, "member_id": f"M0000{int(k[1:]) % 3}", "lines": [{"amount": 1000}]}
        return _post(f"{srv.url}/v1/orders", body, auth, k).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(retry, sent)) == {201}
    with workspace.engine.connect() as conn:
        lots = conn.execute(sa.select(pt.point_lots.c.source)).scalars().all()
        balance = conn.execute(sa.select(sa.func.sum(pt.ledger_entries.c.available))).scalar()
        cached = conn.execute(sa.select(sa.func.sum(pt.point_accounts.c.available))).scalar()
    assert sorted(lots) == sorted(f"order:{k}" for k in sent)  # every call once, none twice
    assert acknowledged <= {s.removeprefix("order:") for s in lots}
    assert balance == cached >= 10 * len(sent)  # tier multipliers may add more
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        assert check_all(uow) == []
