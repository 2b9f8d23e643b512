"""API benchmark: cursor paging depth and the cost of the shared rate limit.

* **paging**: N customers; time of a page of 100 from ``GET /v1/customers``
  deep in the list (the page after the middle customer, reached with its
  cursor) against the reference, the first page, in the same run. Ratio =
  first-page time ÷ deep-page time (1.0 = a deep page costs what page 1 does;
  an OFFSET would fall towards 0 as N grows).
* **rate limit**: requests/s of ``GET /v1/segments`` (a light read) with an
  analyst key limited by ``api_rate_limits`` (one bucket ``UPDATE`` per
  request) against the same key unlimited. Ratio = limited ÷ unlimited.

Requests go through the ASGI app in-process (httpx via Starlette's test
client), so the figures are the server's cost without a network.

    python bench/api_bench.py --customers 200000
    python bench/api_bench.py --smoke

PostgreSQL runs too when ``KIZUNA_BENCH_POSTGRES_URL`` or
``KIZUNA_TEST_POSTGRES_URL`` is set (its ``public`` schema is dropped and
recreated).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import create_app
from kizuna.api.auth import create_key
from kizuna.bootstrap import Context
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace
from kizuna.store import tables as t


def _workspace(root: Path, url: str | None) -> Context:
    if url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        return init_workspace(root / "ws", database_url=url)
    return init_workspace(root / "ws")


def _load(ctx: Context, n: int) -> None:
    signup = datetime(2025, 1, 1, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        for start in range(0, n, 50_000):
            conn.execute(
                sa.insert(t.customers),
                [
                    {"external_id": f"C{i:08d}", "name": f"C{i}", "signup_at": signup}
                    for i in range(start, min(n, start + 50_000))
                ],
            )


def _key(ctx: Context, scope: str) -> dict[str, str]:
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        key = create_key(uow, scope, f"bench-{scope}")
        uow.commit()
    return {"Authorization": f"Bearer {key}"}


def _median_seconds(client: TestClient, url: str, headers: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
    return statistics.median(times)


def _rate(client: TestClient, headers: dict[str, str], requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        r = client.get("/v1/segments", headers=headers)
        assert r.status_code == 200, r.text
    return requests / (time.perf_counter() - started)


def run(backend: str, url: str | None, customers: int, requests: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = _workspace(Path(tmp), url)
        _load(ctx, customers)
        headers = _key(ctx, "analyst")
        ctx.settings = dataclasses.replace(ctx.settings, api_rate_limits="analyst=0")
        with TestClient(create_app(ctx)) as client:
            middle = f"C{customers // 2:08d}"
            first = client.get("/v1/customers?limit=100", headers=headers).json()
            assert len(first["items"]) == 100
            # Walk to the middle cheaply: ask for the page that ends just before it.
            from kizuna.api.pagination import encode_cursor

            deep_url = "/v1/customers?limit=100&cursor=" + encode_cursor(
                ctx, "customers", {"after": middle}
            )
            # Interleaved rounds: on a shared machine, load shifts between
            # back-to-back measurements; alternating spreads it evenly.
            firsts, deeps = [], []
            for _ in range(repeat):
                firsts.append(_median_seconds(client, "/v1/customers?limit=100", headers, 1))
                deeps.append(_median_seconds(client, deep_url, headers, 1))
            first_s, deep_s = statistics.median(firsts), statistics.median(deeps)
            print(
                f"{backend} paging, {customers:,} customers: first page {first_s * 1000:.1f} ms, "
                f"page after the middle {deep_s * 1000:.1f} ms, ratio {first_s / deep_s:.2f}"
            )
            _rate(client, headers, 20)  # warm up
            rounds = 10
            free_s = limited_s = 0.0
            for _ in range(rounds):
                ctx.settings = dataclasses.replace(ctx.settings, api_rate_limits="analyst=0")
                free_s += requests / rounds / _rate(client, headers, requests // rounds)
                ctx.settings = dataclasses.replace(
                    ctx.settings, api_rate_limits="analyst=100000000"
                )
                limited_s += requests / rounds / _rate(client, headers, requests // rounds)
            unlimited, limited = requests / free_s, requests / limited_s
            print(
                f"{backend} rate limit: limited {limited:,.0f} req/s, unlimited "
                f"{unlimited:,.0f} req/s, ratio {limited / unlimited:.2f}"
            )
        ctx.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.requests, args.repeat = 2_000, 50, 3
    url = os.environ.get("KIZUNA_BENCH_POSTGRES_URL") or os.environ.get("KIZUNA_TEST_POSTGRES_URL")
    run("SQLite", None, args.customers, args.requests, args.repeat)
    if url:
        run("PostgreSQL", url, args.customers, args.requests, args.repeat)


if __name__ == "__main__":
    main()
