"""Ledger benchmark: earn calls over HTTP against uvicorn, on PostgreSQL and SQLite.

A load generator on loopback keeps ``--concurrency`` connections busy sending
``POST /v1/orders`` (each with its own Idempotency-Key, one random member out
of ``--members``) for ``--seconds``, and prints throughput and p50/p99
latency. In the same run, ``pgbench`` runs a one-row-insert transaction
against the same PostgreSQL as the reference for what the database alone
can do. Goal: >= 1,000 earn calls/s at p99 < 50 ms on PostgreSQL. The batch
endpoint (``POST /v1/orders:batch``) is timed too: goal >= 20,000 order
lines/s.

    python bench/ledger_bench.py                 # full run
    python bench/ledger_bench.py --smoke         # tiny, for CI
    KIZUNA_EARN_GROUP_COMMIT=off python bench/ledger_bench.py   # one transaction per call
    python bench/ledger_bench.py --concurrency 64 --no-sqlite   # many tills at once

The load generator is ``wrk`` (C, with a Lua script giving every request a
new order, Idempotency-Key and random member) when installed, else the
Python one (``--python-loadgen`` forces it); the first line says which.
Both keep a fixed number of connections busy (a closed loop: calls/s =
connections / latency). On PostgreSQL the run also sends calls open-loop at
a fixed ``--rate`` (default: the goal, 1,000/s), as independent tills do,
timing each call from its scheduled start.
The server's group commit of earn calls (``earn_group_commit``, on by
default for PostgreSQL) is printed on every HTTP line: run once with
``KIZUNA_EARN_GROUP_COMMIT=off`` to compare. Members are enrolled before the
run (a till's steady state); ``--first-calls`` leaves them without a points
account, as rounds 1-3 did (a member's first call also enrols).
``--history N`` records N past orders, with their ledger entries and
Idempotency-Keys, before the run: a shop with a past, where every lookup an
earn makes runs against big tables (an empty database hides a read that
grows with the table).

PostgreSQL runs when ``KIZUNA_BENCH_POSTGRES_URL`` or ``KIZUNA_TEST_POSTGRES_URL``
is set (the database is wiped).

Wall-clock figures depend on what else the machine runs, so every line
also prints the load average, and figures that are steadier under other
load (though CPU per call still rises with it): the CPU time per earn call
of the server processes, of the PostgreSQL backends and of the load
generator (read from ``/proc``), what the cores could therefore do at most
(``cores / CPU per call``), the in-process time, statements and round trips
per call, and ``GET /healthz`` over the same connections (the HTTP stack
alone, no database). ``--workers`` sets the uvicorn workers (2 measured
best on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.server import Server  # noqa: E402

from kizuna.api.auth import create_key  # noqa: E402
from kizuna.bootstrap import Context  # noqa: E402
from kizuna.services.uow import UnitOfWork  # noqa: E402
from kizuna.services.workspace import init_workspace  # noqa: E402
from kizuna.store import tables as t  # noqa: E402

#: ``--history``: orders a shop recorded before the run, each with its ledger
#: entry and Idempotency-Key, spread over the members (a recursive CTE, so the
#: same SQL runs on PostgreSQL and SQLite). Only the qualifying columns are
#: set, so no balance moves; what grows is what every call looks up.
HISTORY_SQL = (
    "INSERT INTO {table} ({columns}) "
    "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) "
    "SELECT {values} FROM s"
)
HISTORY = {
    "orders": (
        "external_id, customer_id, ordered_at, status, total_amount, discount_amount",
        "'H' || n, {first} + n - n / {members} * {members}, {at}, 'completed', 1000, 0",
    ),
    "ledger_entries": (
        "customer_id, at, kind, lot_delta, pending, available, reserved, debt, "
        "qualifying_points, qualifying_spend, reason, source",
        "{first} + n - n / {members} * {members}, {at}, 'earn', 0, 0, 0, 0, 0, 10, 1000, 'history', 'H' || n",
    ),
    "idempotency_keys": (
        "key, request_hash, status_code, response, created_at",
        "'H' || n, 'h', 201, '{{}}', {at}",
    ),
}


def add_history(ctx: Context, count: int, members: int) -> None:
    """``count`` orders recorded before the run (see :data:`HISTORY_SQL`), then ANALYZE."""
    if count <= 0:
        return
    with ctx.engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(t.customers.c.id))).scalar_one()
        at = "'2025-06-01 00:00:00+00:00'"
        for table, (columns, values) in HISTORY.items():
            conn.exec_driver_sql(
                HISTORY_SQL.format(
                    table=table,
                    columns=columns,
                    count=count,
                    values=values.format(first=first, members=members, at=at),
                )
            )
        conn.exec_driver_sql("ANALYZE")


def setup(
    folder: Path, url: str | None, members: int, enrol: bool = True
) -> tuple[Context, str, str]:
    if url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    ctx = init_workspace(folder, database_url=url) if url else init_workspace(folder)
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.insert(t.customers),
            [
                {"external_id": f"M{i:07d}", "signup_at": datetime(2025, 1, 1, tzinfo=UTC)}
                for i in range(members)
            ],
        )
    if enrol:  # a till's steady state: members have a points account already
        from kizuna.services.programme.store import NEVER_DUE
        from kizuna.store import programme_tables as pt

        c = t.customers.c
        with ctx.engine.begin() as conn:
            conn.execute(
                sa.insert(pt.point_accounts).from_select(
                    ["customer_id", "member_since", "next_due_at"],
                    sa.select(
                        c.id,
                        sa.literal(
                            datetime(2025, 1, 1, tzinfo=UTC), pt.point_accounts.c.member_since.type
                        ),
                        sa.literal(NEVER_DUE, pt.point_accounts.c.next_due_at.type),
                    ),
                )
            )
    with ctx.engine.begin() as conn:
        # As after `kizuna import` (which analyzes what it loaded): the planner
        # knows the members are thousands, not the empty table it last saw.
        conn.exec_driver_sql("ANALYZE")
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        # The till's key (POS scope: not rate-limited by default) earns; the
        # back office's admin key sends the batch.
        pos_key = create_key(uow, "pos", "bench till")
        admin_key = create_key(uow, "admin", "bench back office")
        uow.commit()
    return ctx, pos_key, admin_key


def in_process(ctx: Context, members: int, calls: int) -> dict[str, float]:
    """Sequential earn calls through the service layer: time and round trips per call.

    Neither depends much on what else the machine runs (the HTTP figures do):
    statements are counted by a cursor-execute listener; round trips on
    PostgreSQL add the BEGIN psycopg sends before the first statement and the
    COMMIT (the pool pings a connection only after it sat idle for
    ``bootstrap.PG_IDLE_PING_SECONDS``, never in this loop).
    """
    from sqlalchemy import event

    from kizuna.services.programme import orders
    from kizuna.services.programme.idempotency import Idem

    count = [0]

    def listener(*_: object) -> None:
        count[0] += 1

    # Steady state at a till: members already enrolled (a first call also
    # creates the account, two statements more).
    pool = min(members, 500)

    def one(n: int) -> None:
        cmd = orders.RecordOrder(
            f"IP-{n}",
            f"M{n % pool:07d}",
            tuple(orders.OrderLine(i, random.randrange(100, 20000)) for i in (1, 2, 3)),
            idem=Idem(uuid.uuid4().hex, "bench"),
        )
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            orders.record_order(uow, cmd)

    for n in range(pool + 50):  # enrol them; warm the statement caches and prepared statements
        one(n)
    event.listen(ctx.engine, "before_cursor_execute", listener)
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(calls):
        one(10**6 + n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    event.remove(ctx.engine, "before_cursor_execute", listener)
    extra = 2 if ctx.engine.dialect.name == "postgresql" else 0
    return {
        "ms_wall": wall / calls * 1000,
        "ms_cpu": cpu / calls * 1000,
        "statements": count[0] / calls,
        "round_trips": count[0] / calls + extra,
    }


def in_process_groups(ctx: Context, members: int, calls: int, size: int = 32) -> dict[str, float]:
    """The group writer alone: ``calls`` earn calls recorded ``size`` at a time, sequentially.

    What group commit costs per call without HTTP (compare with
    :func:`in_process`); members as in :func:`in_process` (enrolled, distinct
    within a group as far as chance allows).
    """
    from contextlib import contextmanager

    from sqlalchemy import event

    from kizuna.services.programme import orders
    from kizuna.services.programme.group_commit import record_group
    from kizuna.services.programme.idempotency import Idem

    pool = min(members, 500)

    @contextmanager
    def open_uow() -> Any:
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            yield uow

    def solo(cmd: Any, now: Any) -> Any:
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            return orders.record_order(uow, cmd, now)

    groups = [
        [
            (
                orders.RecordOrder(
                    f"GP-{g}-{i}",
                    f"M{random.randrange(pool):07d}",
                    tuple(orders.OrderLine(n, random.randrange(100, 20000)) for n in (1, 2, 3)),
                    idem=Idem(uuid.uuid4().hex, "bench"),
                ),
                None,
            )
            for i in range(size)
        ]
        for g in range(max(1, calls // size) + 1)
    ]
    record_group(open_uow, solo, groups.pop())  # warm the statement caches
    count = [0]

    def listener(*_: object) -> None:
        count[0] += 1

    event.listen(ctx.engine, "before_cursor_execute", listener)
    wall, cpu = time.perf_counter(), time.process_time()
    for group in groups:
        record_group(open_uow, solo, group)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    event.remove(ctx.engine, "before_cursor_execute", listener)
    n = len(groups) * size
    return {
        "size": size,
        "ms_wall": wall / n * 1000,
        "ms_cpu": cpu / n * 1000,
        "statements_per_group": count[0] / len(groups),
    }


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    if m:
        await reader.readexactly(int(m.group(1)))
    return status


def _earn_request(host: str, key: str, members: int, order_no: str, lines: int = 3) -> bytes:
    body = json.dumps(
        {
            "order_id": order_no,
            "member_id": f"M{random.randrange(members):07d}",
            "lines": [{"amount": random.randrange(100, 20000)} for _ in range(lines)],
        }
    ).encode()
    return (
        f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _healthz_request(host: str) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def load(
    port: int,
    key: str,
    members: int,
    seconds: float,
    concurrency: int,
    tag: str,
    healthz: bool = False,
) -> dict[str, float]:
    """Closed-loop load: each connection sends its next call when the last one answers."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = 0

    async def conn_loop(n: int) -> None:
        nonlocal errors, counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            counter += 1
            host = f"127.0.0.1:{port}"
            raw = (
                _healthz_request(host)
                if healthz
                else _earn_request(host, key, members, f"{tag}-{n}-{counter}")
            )
            start = time.perf_counter()
            status = await _request(reader, writer, raw)
            latencies.append(time.perf_counter() - start)
            if status != (200 if healthz else 201):
                errors += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(conn_loop(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    return {
        "calls": n,
        "errors": errors,
        "per_s": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0,
    }


async def open_load(
    port: int, key: str, members: int, seconds: float, rate: float, connections: int
) -> dict[str, float]:
    """Open-loop load: calls start on a fixed schedule of ``rate`` per second, answered or not.

    Tills do not wait for each other, so this is the load a shop really sends;
    each call's latency runs from its *scheduled* start, so a call that had to
    wait for a free connection (the server falling behind) counts that wait
    too (no coordinated omission, as wrk2 measures). ``connections`` is the
    pool the calls share; ``late`` counts calls that found none free.
    """
    host = f"127.0.0.1:{port}"
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    lags: list[float] = []  # how late the generator itself started each call
    errors = late = 0
    # Not loop.time(): uvloop's is libuv's clock, in whole ms and cached per
    # loop iteration, which would round every latency.
    clock = time.perf_counter

    async def call(n: int, due: float) -> None:
        nonlocal errors, late
        lags.append(clock() - due)
        if idle.empty():
            late += 1
        reader, writer = await idle.get()
        try:
            status = await _request(reader, writer, requests[n])
        finally:
            idle.put_nowait((reader, writer))
        latencies.append(clock() - due)
        if status != 201:
            errors += 1

    total = max(1, round(rate * seconds))
    # Built before the clock starts (as wrk's script builds them in C), so the
    # generator takes as little of the two cores as it can from the server.
    requests = [_earn_request(host, key, members, f"open-{n}") for n in range(total)]
    # The generator must not pause on its own: a full collection of this
    # process (tens of ms) would count as the server's latency.
    gc.collect()
    gc.disable()
    began = clock()
    pending: set[asyncio.Task[None]] = set()
    try:
        for n in range(total):
            due = began + n / rate
            if due > clock():
                await asyncio.sleep(due - clock())
            task = asyncio.create_task(call(n, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        gc.enable()
    elapsed = clock() - began
    while not idle.empty():
        idle.get_nowait()[1].close()
    latencies.sort()
    lags.sort()
    n = len(latencies)
    return {
        "calls": n,
        "errors": errors,
        "late": late,
        "lag_p99_ms": lags[min(n - 1, int(n * 0.99))] * 1000,
        "per_s": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
        "p999_ms": latencies[min(n - 1, int(n * 0.999))] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


#: wrk's script: every request a new order and Idempotency-Key, a random member, 3 lines.
WRK_SCRIPT = r"""
local counter = 0
local members = tonumber(os.getenv("BENCH_MEMBERS") or "10000")
local key = os.getenv("BENCH_KEY")
local tag = os.getenv("BENCH_TAG") or "wrk"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d-%d", tag, tid, counter, math.random(1, 1000000000))
  local body = string.format(
    '{"order_id":"%s","member_id":"M%07d","lines":[{"amount":%d},{"amount":%d},{"amount":%d}]}',
    id, math.random(0, members - 1),
    math.random(100, 19999), math.random(100, 19999), math.random(100, 19999))
  local headers = {}
  headers["Authorization"] = "Bearer " .. key
  headers["Idempotency-Key"] = id
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/v1/orders", headers, body)
end
"""


def _wrk_ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.sub(r"^[\d.]+", "", text)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}.get(unit, 1.0)


def wrk_load(
    port: int, key: str, members: int, seconds: float, concurrency: int, tag: str
) -> dict[str, float]:
    """The same closed-loop earn load from ``wrk`` (C, two threads): far less CPU than Python's."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT)
        script = fh.name
    env = {**os.environ, "BENCH_MEMBERS": str(members), "BENCH_KEY": key, "BENCH_TAG": tag}
    cmd = ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s"]
    cmd += ["--latency", "-s", script, f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    os.unlink(script)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed: {out.stderr.strip()}")
    text = out.stdout
    calls = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = int(bad.group(1)) if bad else 0
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if sockets:
        errors += sum(int(x) for x in sockets.groups())
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", text, re.MULTILINE))
    return {
        "calls": calls,
        "errors": errors,
        "per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": _wrk_ms(pct["50"]),
        "p99_ms": _wrk_ms(pct["99"]),
    }


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of ``pids`` so far (Linux ``/proc``)."""
    out = {}
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings; a process started in between counts whole."""
    return sum(t - before.get(p, 0.0) for p, t in after.items())


def _backend_pids(url: str | None) -> list[int]:
    """The PostgreSQL server processes serving the bench database right now."""
    if not url:
        return []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def measured_load(
    server: Server,
    url: str | None,
    key: str,
    members: int,
    seconds: float,
    concurrency: int,
    use_wrk: bool = False,
) -> dict[str, float]:
    """Earn over HTTP, plus the CPU each party spent per call while it ran.

    CPU per call barely depends on what else runs on the machine, unlike
    calls/s; ``2 cores / total CPU per call`` is what the machine could do
    with nothing else on it.
    """
    assert server.proc is not None
    server_before = _cpu_seconds(_process_tree(server.proc.pid))
    db_before = _cpu_seconds(_backend_pids(url))
    client_before = time.process_time() + _children_cpu()
    if use_wrk:
        r = wrk_load(server.port, key, members, seconds, concurrency, "run")
    else:
        r = asyncio.run(load(server.port, key, members, seconds, concurrency, "run"))
    client = time.process_time() + _children_cpu() - client_before
    server_cpu = _spent(server_before, _cpu_seconds(_process_tree(server.proc.pid)))
    db_cpu = _spent(db_before, _cpu_seconds(_backend_pids(url)))
    calls = max(r["calls"], 1)
    r["server_cpu_ms"] = server_cpu / calls * 1000
    r["db_cpu_ms"] = db_cpu / calls * 1000
    r["loadgen_cpu_ms"] = client / calls * 1000
    total = r["server_cpu_ms"] + r["db_cpu_ms"] + r["loadgen_cpu_ms"]
    r["cpu_ms"] = total
    r["ceiling_per_s"] = (os.cpu_count() or 1) * 1000 / total if total else 0.0
    return r


def _children_cpu() -> float:
    """CPU of finished child processes (wrk): user + system."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _fast_loop() -> Any:
    """uvloop's event loop when installed (it comes with uvicorn's extras): the
    open-loop generator's CPU per call is CPU the server does not get."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def machine_speed() -> float:
    """ms for a fixed pure-Python loop (best of 5): how fast this machine runs
    Python *now*. The same code's CPU per call moved by 40 % within an hour on
    this shared VM with nothing else running; this figure says when."""
    import timeit

    return min(timeit.repeat("sum(i * i for i in range(1_000_000))", number=1, repeat=5)) * 1000


def batch(port: int, key: str, members: int, orders: int, lines: int) -> dict[str, float]:
    import httpx

    payload = {
        "orders": [
            {
                "order_id": f"B{i:08d}",
                "member_id": f"M{random.randrange(members):07d}",
                "lines": [{"amount": random.randrange(100, 20000)} for _ in range(lines)],
            }
            for i in range(orders)
        ]
    }
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}
    start = time.perf_counter()
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/orders:batch", json=payload, headers=headers, timeout=600
    )
    elapsed = time.perf_counter() - start
    if r.status_code != 201:
        raise SystemExit(f"batch failed: {r.status_code} {r.text[:500]}")
    return {
        "orders": orders,
        "lines": orders * lines,
        "seconds": elapsed,
        "lines_per_s": orders * lines / elapsed,
    }


def pgbench_path() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if os.path.exists(f"{bindir}/pgbench"):
            return f"{bindir}/pgbench"
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def pgbench(url: str, seconds: int, clients: int) -> dict[str, float] | None:
    exe = pgbench_path()
    if exe is None:
        print("pgbench not found; skipping the reference")
        return None
    u = sa.engine.make_url(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_reference"))
        conn.execute(
            sa.text(
                "CREATE TABLE bench_reference (id bigserial PRIMARY KEY, customer_id bigint, points bigint, at timestamptz)"
            )
        )
    engine.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write("\\set c random(1, 100000)\n")
        fh.write("INSERT INTO bench_reference (customer_id, points, at) VALUES (:c, 10, now());\n")
        script = fh.name
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    cmd = [
        exe,
        "-n",
        "-h",
        u.host or "127.0.0.1",
        "-p",
        str(u.port or 5432),
        "-U",
        u.username or "postgres",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-f",
        script,
        "-r",
        u.database or "postgres",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    os.unlink(script)
    if out.returncode != 0:
        print(f"pgbench failed: {out.stderr.strip()}")
        return None
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    lat = float(re.search(r"latency average = ([\d.]+) ms", out.stdout).group(1))  # type: ignore[union-attr]
    return {"tps": tps, "latency_avg_ms": lat}


def group_commit_mode(url: str | None) -> str:
    """What the server does with ``KIZUNA_EARN_GROUP_COMMIT`` (auto: on for PostgreSQL)."""
    mode = os.environ.get("KIZUNA_EARN_GROUP_COMMIT", "auto").lower()
    on = mode == "on" or (mode == "auto" and bool(url))
    return f"{'on' if on else 'off'} ({mode})"


EARN_GOAL = 1000  # calls/s, at p99 under EARN_P99_GOAL_MS, on PostgreSQL
EARN_P99_GOAL_MS = 50
BATCH_GOAL = 20_000  # order lines/s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for PostgreSQL")
    parser.add_argument("--batch-orders", type=int, default=20_000)
    parser.add_argument("--batch-lines", type=int, default=5)
    parser.add_argument("--in-process", type=int, default=2000, help="sequential in-process calls")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="keep the server's per-request INFO log (default: KIZUNA_LOG_LEVEL=WARNING)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--python-loadgen",
        action="store_true",
        help="use the Python load generator even when wrk is installed",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="also send earn calls open-loop at this many per second "
        f"(default {EARN_GOAL:,} on PostgreSQL, none on SQLite; 0: none)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="orders (with ledger entries and keys) recorded before the run: a shop with a past",
    )
    parser.add_argument(
        "--first-calls",
        action="store_true",
        help="leave members without a points account, so many calls enrol (rounds 1-3 did)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.members, args.concurrency, args.batch_orders = 1.0, 50, 4, 200
        args.in_process, args.history = 50, min(args.history, 500) or 500
    if not args.access_log:
        os.environ.setdefault("KIZUNA_LOG_LEVEL", "WARNING")
    pg = os.environ.get("KIZUNA_BENCH_POSTGRES_URL") or os.environ.get("KIZUNA_TEST_POSTGRES_URL")
    backends = [("PostgreSQL", pg, args.workers)] if pg else []
    if not args.no_sqlite or not pg:
        backends.append(("SQLite", None, 1))
    use_wrk = shutil.which("wrk") is not None and not args.python_loadgen
    print(
        f"load generator: {'wrk (C, 2 threads)' if use_wrk else 'Python asyncio'}"
        + ("" if use_wrk or args.python_loadgen else " (wrk not installed)")
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load average {load_average()} (1/5/15 min) at the start; "
        f"reference Python loop {machine_speed():.0f} ms (machine speed: lower is faster)"
    )
    for name, url, workers in backends:
        with tempfile.TemporaryDirectory() as tmp:
            ctx, key, admin_key = setup(Path(tmp) / "ws", url, args.members, not args.first_calls)
            began = time.perf_counter()
            add_history(ctx, args.history, args.members)
            if args.history:
                print(
                    f"{name:10s} history: {args.history:,} orders with their ledger entries and "
                    f"keys recorded before the run ({time.perf_counter() - began:.1f} s)"
                )
            ip = in_process(ctx, args.members, args.in_process)
            print(
                f"{name:10s} earn in-process, sequential: {ip['ms_wall']:.2f} ms/call wall, "
                f"{ip['ms_cpu']:.2f} ms/call CPU, {ip['statements']:.1f} statements "
                f"= {ip['round_trips']:.1f} round trips per call"
            )
            gp = in_process_groups(ctx, args.members, args.in_process)
            print(
                f"{name:10s} earn in-process, groups of {gp['size']} (group commit's writer alone): "
                f"{gp['ms_wall']:.2f} ms/call wall, {gp['ms_cpu']:.2f} ms/call CPU, "
                f"{gp['statements_per_group']:.1f} statements per group"
            )
            server = Server(ctx.settings.workspace, workers=workers)
            server.start()
            try:
                warm = min(args.seconds, 1.0)
                asyncio.run(load(server.port, key, args.members, warm, args.concurrency, "warm"))
                r = measured_load(
                    server, url, key, args.members, args.seconds, args.concurrency, use_wrk
                )
                print(
                    f"{name:10s} earn over HTTP ({workers} worker(s), {args.concurrency} connections, "
                    f"load generator {'wrk' if use_wrk else 'Python'}, "
                    f"group commit {group_commit_mode(url)}, "
                    f"load average {load_average()}): "
                    f"{r['per_s']:,.0f} calls/s  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
                    f"({r['calls']:,} calls, {r['errors']} errors)"
                )
                print(
                    f"{name:10s} CPU per earn call: server {r['server_cpu_ms']:.2f} ms + database "
                    f"{r['db_cpu_ms']:.2f} ms + load generator {r['loadgen_cpu_ms']:.2f} ms "
                    f"= {r['cpu_ms']:.2f} ms -> at most {r['ceiling_per_s']:,.0f} calls/s "
                    f"on {os.cpu_count()} idle cores"
                )
                rate = args.rate if args.rate is not None else (EARN_GOAL if url else 0)
                if args.smoke and rate:
                    rate = 20
                o = None
                if rate:
                    spent = time.process_time()
                    with asyncio.Runner(loop_factory=_fast_loop()) as runner:
                        o = runner.run(
                            open_load(
                                server.port,
                                key,
                                args.members,
                                args.seconds,
                                rate,
                                max(8, args.concurrency * 2),
                            )
                        )
                    spent = time.process_time() - spent
                    print(
                        f"{name:10s} earn open-loop at a fixed {rate:,.0f} calls/s (latency from "
                        f"each call's scheduled start; load generator Python, "
                        f"{spent / max(o['calls'], 1) * 1000:.2f} ms CPU per call; "
                        f"load average {load_average()}): {o['per_s']:,.0f} calls/s answered  "
                        f"p50 {o['p50_ms']:.1f} ms  p99 {o['p99_ms']:.1f} ms  "
                        f"p99.9 {o['p999_ms']:.1f} ms  max {o['max_ms']:.1f} ms  "
                        f"({o['calls']:,} calls, {o['errors']} errors, "
                        f"{o['late']} waited for a connection; the generator itself started "
                        f"calls up to {o['lag_p99_ms']:.1f} ms late at p99)"
                    )
                h = asyncio.run(
                    load(server.port, key, args.members, warm * 2, args.concurrency, "hz", True)
                )
                print(
                    f"{name:10s} GET /healthz, same server and connections (HTTP stack alone): "
                    f"{h['per_s']:,.0f} req/s  p50 {h['p50_ms']:.1f} ms"
                    f"  (earn/healthz = {r['per_s'] / max(h['per_s'], 1):.2f})"
                )
                b = batch(server.port, admin_key, args.members, args.batch_orders, args.batch_lines)
                print(
                    f"{name:10s} batch: {b['lines']:,} order lines in {b['seconds']:.2f} s = "
                    f"{b['lines_per_s']:,.0f} lines/s (goal {BATCH_GOAL:,}: "
                    f"{b['lines_per_s'] / BATCH_GOAL:.2f}x; load average {load_average()})"
                )
                failed = r["errors"] + h["errors"] + (o["errors"] if o else 0)
                if failed:
                    raise SystemExit(f"{failed} calls failed")
            finally:
                server.stop()
                ctx.dispose()
        if url:
            print(
                f"{name:10s} earn goal: {r['per_s']:,.0f} / {EARN_GOAL:,} calls/s = "
                f"{r['per_s'] / EARN_GOAL:.2f}x, p99 {r['p99_ms']:.0f} ms (goal < {EARN_P99_GOAL_MS} ms)"
                + (
                    f"; open loop at {rate:,.0f}/s: p99 {o['p99_ms']:.0f} ms"
                    if o is not None
                    else ""
                )
            )
            ref = pgbench(url, 2 if args.smoke else int(args.seconds), args.concurrency)
            if ref:
                print(
                    f"{'pgbench':10s} one-row INSERT per transaction, {args.concurrency} clients: "
                    f"{ref['tps']:,.0f} tx/s  avg latency {ref['latency_avg_ms']:.2f} ms  "
                    f"(earn/pgbench = {r['per_s'] / ref['tps']:.3f}; load average {load_average()})"
                )


if __name__ == "__main__":
    main()
