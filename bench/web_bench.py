"""Dashboard pages and the member summary on N scored customers, over loopback HTTP.

Issue 6: "p50/p95 of each dashboard page and of the member-summary API under
a loopback load generator. Goal: every page under 300 ms at p95, the member
summary at 2,000 requests/s or more."

**Setup** (bench-only, reasonably fast at 1M): the sample generator writes a
*base* of ``--base`` customers (default 20,000; realistic orders, answers,
comments, events), which the real importer loads; then each customer-keyed
table the scoring reads (customers, consents, orders, returns, survey answers,
reviews, contacts) is *cloned* in SQL (``INSERT ... SELECT`` with shifted ids
and ``-<copy>`` suffixed external ids) until there are N customers. Order
lines, events, referrals and community activity stay those of the base (the
journey map's touchpoints and the 360 timeline come from the base customers).
Then the REAL ``kizuna.services.scoring.score`` runs, so every page reads
real scoring output; ``--members`` customers earn points through the
programme service (``record_order``) so member summaries have lots and tiers.
``--keep DIR`` keeps the built workspace in DIR and reuses it on the next
run (delete DIR to rebuild).

**Measurement**: a real uvicorn (``kizuna.api:app_from_env``, API + dashboard,
no in-process worker) on 127.0.0.1; a small asyncio HTTP/1.1 keep-alive load
generator (raw streams, lighter than an HTTP library, so more of the 2 cores
go to the server), logged in as an admin in Japanese.

* every dashboard page of the navigation plus the drill-downs (matrix
  customers, a 360, drivers, journey map per persona, ...): the first request
  after the server starts (*cold*: what the first visitor after a scoring run
  waits), then ``--repeat`` requests from ``--page-concurrency`` connections
  (*warm*) → p50/p95 and p95 ÷ 300 ms (the goal);
* ``GET /v1/members/{id}`` over random members for ``--seconds`` from
  ``--concurrency`` connections → requests/s, p50/p95/p99;
* reference, same run, same generator: ``GET /healthz`` requests/s (the HTTP
  stack's ceiling on this machine); ratio member summary ÷ healthz. The two
  alternate in 3 rounds each (load on a shared machine shifts meanwhile).

The member summary and ``/healthz`` are driven by ``wrk`` (a C load
generator; a Lua script picks a random member per request) when it is on
the PATH — it costs the 2 cores far less than a Python generator, so more
of them go to the server — else by the Python generator above
(``--generator`` forces one; the report says which ran). ``--workers 1,2``
measures each number of uvicorn processes in turn, each on a fresh server.
The server's CPU time per request (user + system of every process of the
server, from ``/proc``) is printed next to each figure: unlike requests/s it
hardly depends on what else the machine runs.

The server logs at WARNING (``KIZUNA_LOG_LEVEL``): a JSON access line per
request would be measured too. The API key is an ``analyst`` key with ``api_rate_limits`` set to
``analyst=0`` (unlimited) in the bench workspace's ``kizuna.toml``: the bench
measures the summary, not the limiter (``bench/api_bench.py`` does that).

Load-independent figures are printed too: the member summary's in-process
time per call and SQL statements per call (measured without HTTP in this
process, on the same workspace).

    python bench/web_bench.py                         # 1,000,000 customers
    python bench/web_bench.py --keep /tmp/kz_web_1m   # build once, reuse after
    python bench/web_bench.py --customers 100000
    python bench/web_bench.py --keep /tmp/kz_web_1m --no-pages --workers 1,2
    python bench/web_bench.py --smoke                 # 600 customers, CI
    KIZUNA_BENCH_POSTGRES_URL=postgresql+psycopg://... python bench/web_bench.py  # PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests.web.webclient (users)

AS_OF = date(2026, 10, 31)
GOAL_MS = 300.0
GOAL_RPS = 2000.0
#: A page whose cold request took longer is sampled 3 times warm, not --repeat.
SLOW_MS = 5000.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Tables cloned per copy: (table, columns shifted by the customer offset,
#: columns shifted by their own table's offset).
CLONED = ("customers", "consents", "orders", "returns", "survey_answers", "reviews", "contacts")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- setup -----------------------------------------------------------------------------


def _clone(ctx: Any, copies: int, total: int) -> None:
    """Copy the base customers and their rows ``copies`` times, shifting ids."""
    from kizuna.store import tables as t

    with ctx.engine.begin() as conn:
        offsets = {
            name: int(
                conn.execute(sa.select(sa.func.max(t.metadata.tables[name].c.id))).scalar() or 0
            )
            for name in CLONED
        }
        base = int(conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar_one())
        for k in range(1, copies + 1):
            for name in CLONED:
                table = t.metadata.tables[name]
                cols, exprs = [], []
                where = None
                for c in table.columns:
                    e: Any = c
                    if c.name == "id":
                        e = c + k * offsets[name]
                    elif c.name == "external_id":
                        e = c + sa.literal(f"-{k}")
                    elif c.name == "customer_id":
                        e = c + k * offsets["customers"]
                    elif c.name == "order_id" and name == "returns":
                        e = c + k * offsets["orders"]
                    elif c.name in ("account_id", "product_id", "import_run_id"):
                        e = c
                    cols.append(c.name)
                    exprs.append(e.label(c.name) if e is not c else c)
                query = sa.select(*exprs).where(table.c.id <= offsets[name])
                if name == "customers":
                    last = min(base, total - k * base)
                    if last <= 0:
                        break
                    where = table.c.id <= last
                elif "customer_id" in table.c:
                    where = table.c.customer_id <= min(offsets["customers"], total - k * base)
                if where is not None:
                    query = query.where(where)
                conn.execute(sa.insert(table).from_select(cols, query))
            if k % 10 == 0 or k == copies:
                log(f"  cloned copy {k}/{copies}")
        if conn.dialect.name == "postgresql":
            for name in CLONED:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )


def _earn(ctx: Any, members: Sequence[str]) -> None:
    """Each member buys twice through the programme service: lots, tiers, a ledger."""
    from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
    from kizuna.services.uow import UnitOfWork

    now = datetime.now(UTC)
    for i, member in enumerate(members):
        for j, days in enumerate((40, 3)):
            with UnitOfWork(ctx.engine, ctx.settings) as uow:
                record_order(
                    uow,
                    RecordOrder(
                        f"WB-{i}-{j}",
                        member,
                        (OrderLine(1, 4_800 + 100 * (i % 50)),),
                        ordered_at=now - timedelta(days=days),
                    ),  # fmt: skip
                    now=now - timedelta(days=days),
                )


def build(ws: Path, customers: int, base: int, members: int, url: str | None) -> None:
    from tests.web.webclient import add_users

    from kizuna.ingest.sample import generate
    from kizuna.services import journeys, segments
    from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
    from kizuna.services.scoring import score
    from kizuna.services.uow import UnitOfWork
    from kizuna.services.workspace import init_workspace

    if url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    ctx = init_workspace(ws, database_url=url)
    t0 = time.perf_counter()
    base = min(base, customers)
    generate(ws.parent / "sample", base, seed=5)
    import_paths(ctx, ImportFiles(files_in_folder(ws.parent / "sample")))
    log(f"base of {base:,} customers imported in {time.perf_counter() - t0:.0f} s")
    t1 = time.perf_counter()
    copies = -(-customers // base) - 1
    _clone(ctx, copies, customers)
    log(f"cloned to {customers:,} customers in {time.perf_counter() - t1:.0f} s")
    add_users(ctx)
    uow = lambda: UnitOfWork(ctx.engine, ctx.settings)  # noqa: E731
    rule = {"and": [{"aggregate": "orders", "op": "gte", "value": 3}, {"consent": "email"}]}
    segments.handle_save(segments.SaveSegment({"name": "bench", "rule": rule}), uow())
    doc = {"name": "bench", "holdout_percent": 10, "trigger": {"segment_entry": "bench"},
           "steps": [{"id": "t", "action": "create_task", "title": "call {{ name }}"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow())
    t2 = time.perf_counter()
    _earn(ctx, [f"C{i:07d}" for i in range(1, min(members, base) + 1)])
    log(f"{min(members, base):,} members earned twice in {time.perf_counter() - t2:.0f} s")
    t3 = time.perf_counter()
    run, _ = score(ctx, as_of=AS_OF, dashboard=True)
    log(f"scoring run {run.id} ({run.customers:,} scored) in {time.perf_counter() - t3:.0f} s")
    settings_file = ws / "kizuna.toml"
    text = settings_file.read_text(encoding="utf-8")
    if "api_rate_limits" not in text:
        settings_file.write_text(text + '\napi_rate_limits = "analyst=0"\n', encoding="utf-8")
    (ws / ".bench_built").write_text(f"{customers} {base} {members}\n", encoding="utf-8")
    ctx.dispose()
    log(f"setup done in {time.perf_counter() - t0:.0f} s")


def rescore(ws: Path) -> None:
    """A new scoring run on a kept workspace (e.g. to measure the end-of-run precompute)."""
    from kizuna.bootstrap import open_context
    from kizuna.services.scoring import score

    ctx = open_context(str(ws))
    started = time.perf_counter()
    run, _ = score(ctx, as_of=AS_OF, dashboard=True)
    log(f"scoring run {run.id} in {time.perf_counter() - started:.0f} s; timings {run.timings}")
    ctx.dispose()


def upgrade(ws: Path) -> None:
    """Bring a kept workspace to this code's schema (what `kizuna db upgrade` does)."""
    from kizuna.bootstrap import open_context
    from kizuna.store import schema

    ctx = open_context(str(ws))
    schema.upgrade(ctx.engine)
    ctx.dispose()


def api_key(ws: Path) -> str:
    from kizuna.api.auth import create_key
    from kizuna.bootstrap import open_context
    from kizuna.services.uow import UnitOfWork

    ctx = open_context(str(ws))
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        key = create_key(uow, "analyst", "web-bench")
        uow.commit()
    ctx.dispose()
    return key


def in_process_summary(ws: Path, members: Sequence[str], calls: int) -> tuple[float, float]:
    """(ms per call, SQL statements per call) of ``members.summary`` without HTTP,
    in the unit of work the route gives it (``deps.read_now``: autocommit on
    PostgreSQL)."""
    from kizuna.api.deps import read_now
    from kizuna.bootstrap import open_context
    from kizuna.services.programme import members as m

    ctx = open_context(str(ws))
    count = [0]

    def counter(*_: Any) -> None:
        count[0] += 1

    sa.event.listen(ctx.engine, "before_cursor_execute", counter)
    rng = random.Random(2)
    for member in members[:20]:  # warm the programme cache and the page cache
        read_now(ctx, lambda uow: m.summary(uow, member))  # noqa: B023
    count[0] = 0
    started = time.perf_counter()
    for _ in range(calls):
        member = rng.choice(members)
        read_now(ctx, lambda uow: m.summary(uow, member))  # noqa: B023
    elapsed = time.perf_counter() - started
    statements = count[0] / calls
    ctx.dispose()
    return elapsed / calls * 1000, statements


# --- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving the API and the dashboard of ``ws`` on loopback."""

    def __init__(self, ws: Path, workers: int) -> None:
        self.ws, self.workers, self.port = ws, workers, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        import httpx

        env = {**os.environ, "KIZUNA_WORKSPACE": str(self.ws), "KIZUNA_SERVE_DASHBOARD": "1",
               "KIZUNA_SERVE_WORKER": "0", "KIZUNA_LOG_LEVEL": "WARNING"}  # fmt: skip
        env.pop("KIZUNA_DATABASE_URL", None)
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "kizuna.api:app_from_env",
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
               "--no-access-log", "--no-server-header", "--workers", str(self.workers)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("uvicorn did not start within 180 s")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every live process of the server (uvicorn's
        supervisor and its workers share a process group), from ``/proc``."""
        assert self.proc is not None
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.proc.pid:  # pgrp
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None


# --- the load generator ----------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams (Content-Length bodies)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = {"Host": "127.0.0.1", **self.headers, **(extra or {})}
        if body:
            head["Content-Length"] = str(len(body))
        lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        cookies = []
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
                if k.strip().lower() == "set-cookie":
                    cookies.append(v.strip().split(";", 1)[0])
        if cookies:
            headers["set-cookie"] = "; ".join(cookies)
        if headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def login(port: int) -> dict[str, str]:
    """Cookie headers of a logged-in admin (Japanese)."""
    from urllib.parse import urlencode

    from tests.web.webclient import PASSWORD

    c = Conn(port, {})
    _, h, body = await c.request("GET", "/login")
    cookie = h.get("set-cookie", "")
    token = CSRF.search(body.decode())
    assert token, "no CSRF token on /login"
    form = urlencode({"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)})
    status, h2, _ = await c.request(
        "POST", "/login", form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )  # fmt: skip
    assert status == 303, status
    await c.close()
    return {"Cookie": f"{h2.get('set-cookie', cookie)}; kizuna_lang=ja"}


def pct(sorted_times: list[float], q: float) -> float:
    return sorted_times[min(len(sorted_times) - 1, round(q * (len(sorted_times) - 1)))]


async def timed_many(
    port: int, headers: dict[str, str], paths: Sequence[str], concurrency: int,
    *, seconds: float | None = None, count: int | None = None,
) -> tuple[list[float], float]:  # fmt: skip
    """Send ``paths`` (cycled) from ``concurrency`` connections; latencies and elapsed s."""
    times: list[float] = []
    stop_at = time.perf_counter() + (seconds or 1e9)
    remaining = [count if count is not None else 10**12]
    next_path = [0]

    async def worker() -> None:
        c = Conn(port, headers)
        try:
            while remaining[0] > 0 and time.perf_counter() < stop_at:
                remaining[0] -= 1
                path = paths[next_path[0] % len(paths)]
                next_path[0] += 1
                t0 = time.perf_counter()
                status, _, body = await c.request("GET", path)
                times.append(time.perf_counter() - t0)
                assert status == 200, (path, status, body[:300])
        finally:
            await c.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times, time.perf_counter() - started


def pages_of(ws: Path) -> list[str]:
    """Every GET page of the navigation for an admin, plus the drill-downs."""
    import kizuna.web.app as web_app
    from kizuna.web.nav import items_for

    web_app._import_feature_pages()
    paths = [n.path for n in items_for("admin")]
    extra = [
        "/analytics/matrix/customers?cell=true",
        "/customers/C0000001",
        "/insights/drivers",
        "/journey-map",
        "/journey-map?persona=0",
        "/journeys",
        "/journeys/bench",
        "/measures",
        "/segments/bench",
        "/voice/trends",
        "/advocacy/referrals",
    ]
    return list(dict.fromkeys(paths + extra))


async def measure_pages(
    port: int, pages: Sequence[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Cold and warm p50/p95 of each page, logged in as an admin (Python generator)."""
    out: dict[str, Any] = {}
    cookies = await login(port)
    # Cold: the first request of each page after the server (re)started.
    c = Conn(port, cookies)
    for path in pages:
        t0 = time.perf_counter()
        status, _, body = await c.request("GET", path)
        cold = (time.perf_counter() - t0) * 1000
        assert status == 200, (path, status, body[:300])
        out[path] = {"cold": cold}
    await c.close()
    for path in pages:
        # A page that takes seconds even warm gets 3 samples, not --repeat.
        n = args.repeat if out[path]["cold"] < SLOW_MS else 3
        times, _ = await timed_many(port, cookies, [path], args.page_concurrency, count=n)
        times.sort()
        out[path].update(p50=pct(times, 0.5) * 1000, p95=pct(times, 0.95) * 1000, n=n)
        log(f"  {path}: cold {out[path]['cold']:.0f} ms, p95 {out[path]['p95']:.0f} ms")
    return out


# --- throughput: the member summary against /healthz -----------------------------------

#: wrk's script: a random member per request (``KZ_MEMBERS`` ids C0000001...),
#: or the fixed path given with the URL when ``KZ_MEMBERS`` is unset; at the end
#: one machine-readable line with the counts and latency percentiles (µs).
WRK_LUA = """
local members = tonumber(os.getenv("KZ_MEMBERS") or "0")
math.randomseed(tonumber(os.getenv("KZ_SEED") or "1"))
if members > 0 then
  request = function()
    return wrk.format("GET", string.format("/v1/members/C%07d", math.random(1, members)))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KZ %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    port: int, path: str, headers: dict[str, str], members: int, concurrency: int,
    seconds: float, script: Path,
) -> tuple[int, float, list[float]]:  # fmt: skip
    """(requests, seconds, [p50, p95, p99] ms) of one wrk run; every answer must be 2xx."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(script)]  # fmt: skip
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    env = {**os.environ, "KZ_MEMBERS": str(members), "KZ_SEED": str(random.randrange(1 << 30))}
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"], env=env, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("KZ "))
    n, dur_us, errors, p50, p95, p99, _ = (int(v) for v in line.split()[1:])
    assert errors == 0, f"wrk saw {errors} errors or non-2xx answers on {path}:\n{out}"
    return n, dur_us / 1e6, [p50 / 1000, p95 / 1000, p99 / 1000]


def run_python(
    port: int, paths: Sequence[str], headers: dict[str, str], concurrency: int, seconds: float
) -> tuple[int, float, list[float]]:
    """The same as :func:`run_wrk` with the asyncio generator of this file."""
    times, elapsed = asyncio.run(timed_many(port, headers, paths, concurrency, seconds=seconds))
    times.sort()
    return len(times), elapsed, [pct(times, q) * 1000 for q in (0.5, 0.95, 0.99)]


def throughput(
    server: Server, key: str, members: Sequence[str], args: argparse.Namespace, generator: str
) -> dict[str, Any]:
    """Member summary and /healthz in alternating rounds: req/s, p50/p95/p99 (mean of
    the rounds), server CPU ms per request, load average."""
    auth = {"Authorization": f"Bearer {key}"}
    rng = random.Random(1)
    member_paths = [f"/v1/members/{rng.choice(members)}" for _ in range(5000)]
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_LUA, encoding="utf-8")

    def once(which: str, seconds: float) -> tuple[int, float, list[float]]:
        if generator == "wrk":
            if which == "member":
                return run_wrk(server.port, "/", auth, len(members), args.concurrency, seconds,
                               script)  # fmt: skip
            return run_wrk(server.port, "/healthz", {}, 0, args.concurrency, seconds, script)
        if which == "member":
            return run_python(server.port, member_paths, auth, args.concurrency, seconds)
        return run_python(server.port, ["/healthz"], {}, args.concurrency, seconds)

    once("member", 1.0)  # warm up (every worker process: many connections)
    once("healthz", 1.0)
    rounds = 3
    acc: dict[str, dict[str, Any]] = {
        w: {"n": 0, "s": 0.0, "cpu": 0.0, "pcts": []} for w in ("member", "healthz")
    }
    loads = []
    for _ in range(rounds):
        for which in ("member", "healthz"):
            cpu0 = server.cpu_seconds()
            n, secs, pcts = once(which, args.seconds / rounds)
            acc[which]["cpu"] += server.cpu_seconds() - cpu0
            acc[which]["n"] += n
            acc[which]["s"] += secs
            acc[which]["pcts"].append(pcts)
            loads.append(os.getloadavg()[0])
    script.unlink()
    out: dict[str, Any] = {"workers": server.workers, "generator": generator,
                           "load": (min(loads), max(loads))}  # fmt: skip
    for which, a in acc.items():
        mean = [sum(p[i] for p in a["pcts"]) / rounds for i in range(3)]
        out[which] = {"rps": a["n"] / a["s"], "p50": mean[0], "p95": mean[1], "p99": mean[2],
                      "cpu_ms": a["cpu"] / a["n"] * 1000}  # fmt: skip
    return out


def report(
    pages: dict[str, Any], runs: Sequence[dict[str, Any]], in_proc: tuple[float, float]
) -> None:
    la = os.getloadavg()
    print(f"\nload average: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    if pages:
        print(f"{'page':<44} {'cold ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'p95/300ms':>10} {'n':>4}")
    worst = 0.0
    for path, r in pages.items():
        worst = max(worst, r["p95"])
        print(
            f"{path:<44} {r['cold']:>9.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
            f"{r['p95'] / GOAL_MS:>10.2f} {r['n']:>4}"
        )
    if pages:
        print(f"worst page p95: {worst:.1f} ms (goal < {GOAL_MS:.0f} ms, "
              f"ratio {worst / GOAL_MS:.2f})")  # fmt: skip
    for run in runs:
        m, h = run["member"], run["healthz"]
        print(f"\n{run['workers']} server process(es), load generator {run['generator']} "
              f"({args_conc[0]} connections), load average {run['load'][0]:.1f}–"
              f"{run['load'][1]:.1f} during the rounds")  # fmt: skip
        print(f"GET /v1/members/{{id}}: {m['rps']:,.0f} req/s, p50 {m['p50']:.1f} ms, "
              f"p95 {m['p95']:.1f} ms, p99 {m['p99']:.1f} ms, server CPU {m['cpu_ms']:.2f} ms "
              f"per request (goal ≥ {GOAL_RPS:,.0f} req/s, ratio {m['rps'] / GOAL_RPS:.2f})")  # fmt: skip
        print(f"GET /healthz (reference): {h['rps']:,.0f} req/s, p50 {h['p50']:.1f} ms, "
              f"p95 {h['p95']:.1f} ms, p99 {h['p99']:.1f} ms, server CPU {h['cpu_ms']:.2f} ms "
              f"per request")  # fmt: skip
        print(f"ratio member summary ÷ healthz: {m['rps'] / h['rps']:.2f}")
    print(f"\nmember summary in process: {in_proc[0]:.2f} ms per call, "
          f"{in_proc[1]:.1f} SQL statements per call")  # fmt: skip


#: --concurrency, for the report (set in main).
args_conc = [0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=20_000, help="customers generated, then cloned")
    parser.add_argument("--members", type=int, default=5_000, help="customers who earn points")
    parser.add_argument("--repeat", type=int, default=40, help="warm requests per page")
    parser.add_argument("--page-concurrency", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="connections (member summary)")
    parser.add_argument("--seconds", type=float, default=15.0, help="member summary / healthz time")
    parser.add_argument(
        "--workers", default="1", help="uvicorn worker processes; a list (1,2) measures each"
    )
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto",
        help="load generator of the member summary and /healthz (auto: wrk if installed)",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="build the workspace here and reuse it")
    parser.add_argument("--smoke", action="store_true", help="600 customers, few requests (CI)")
    parser.add_argument(
        "--no-pages", action="store_true", help="measure only the member summary and /healthz"
    )
    parser.add_argument(
        "--rescore", action="store_true", help="with --keep: run a new scoring run first"
    )
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.base, args.members = 600, 300, 50
        args.repeat, args.seconds, args.concurrency = 3, 1.5, 4
    args_conc[0] = args.concurrency
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    worker_counts = [int(w) for w in str(args.workers).split(",")]
    url = os.environ.get("KIZUNA_BENCH_POSTGRES_URL")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        ws = root / "ws"
        if not (ws / ".bench_built").exists():
            root.mkdir(parents=True, exist_ok=True)
            build(ws, args.customers, args.base, args.members, url)
        else:
            log(f"reusing {ws} ({(ws / '.bench_built').read_text().strip()})")
            upgrade(ws)
            if args.rescore:
                rescore(ws)
        members = [f"C{i:07d}" for i in range(1, min(args.members, args.base) + 1)]
        key = api_key(ws)
        page_paths = [] if args.no_pages else pages_of(ws)
        log(f"load average before measuring: {os.getloadavg()[0]:.2f}; generator {generator}")
        pages: dict[str, Any] = {}
        runs = []
        for i, workers in enumerate(worker_counts):
            with Server(ws, workers) as server:
                if page_paths and i == 0:
                    pages = asyncio.run(measure_pages(server.port, page_paths, args))
                runs.append(throughput(server, key, members, args, generator))
            log(f"  {workers} process(es): member {runs[-1]['member']['rps']:,.0f} req/s, "
                f"healthz {runs[-1]['healthz']['rps']:,.0f} req/s")  # fmt: skip
        in_proc = in_process_summary(ws, members, 200 if args.smoke else 2000)
        report(pages, runs, in_proc)


if __name__ == "__main__":
    main()
