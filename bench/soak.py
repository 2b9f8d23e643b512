"""Soak test: real load on PostgreSQL while processes are killed, then the invariants.

One API process (uvicorn), two journey worker processes and an SMTP sink
(aiosmtpd) run against PostgreSQL. For ``--duration`` seconds:

* shops send orders through the HTTP API (``POST /v1/orders`` with an
  Idempotency-Key; a failed call is retried with the same key, as a POS
  would, until it is acknowledged);
* the site records behaviour events and survey answers (straight into the
  system of record, as the importer or a collector would);
* three journeys react: order -> thank-you email + 10 points (grant_points),
  survey answer -> email, ``app_open`` event -> staff task;
* a fault injector SIGKILLs a worker or the API process at random and
  restarts it.

At the end the load stops, the workers drain the queue, and the invariants
are checked:

1. every acknowledged order is recorded exactly once and earned exactly once;
2. every balance equals its ledger (``kizuna points check``);
3. no message was sent twice: every journey email step produced at most one
   distinct message (a resend after a SIGKILL between the server's 250 and
   the commit carries the same Message-ID and is counted separately);
4. no due step is left behind: every trigger has its run, and no run is due.

    python bench/soak.py --duration 600        # ten minutes
    python bench/soak.py --smoke               # 40 s of load (~60 s in all), for CI

PostgreSQL comes from ``KIZUNA_SOAK_POSTGRES_URL`` or
``KIZUNA_TEST_POSTGRES_URL``; its ``public`` schema is dropped and recreated,
so the database name must contain ``soak`` or ``test``. Without one the
script says so and exits 0 (nothing to soak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]

JOURNEYS: list[dict[str, Any]] = [
    {
        "name": "soak-order",
        "holdout_percent": 0,
        "trigger": {"event": "order_placed"},
        "steps": [
            {"id": "thanks", "action": "email", "subject": "ご購入ありがとうございます",
             "text": "{{ name }}様 {{ unsubscribe_url }}"},
            {"id": "bonus", "action": "grant_points", "points": 10, "reason": "soak thanks"},
        ],
    },
    {
        "name": "soak-survey",
        "holdout_percent": 0,
        "trigger": {"event": "survey_answered"},
        "steps": [{"id": "reply", "action": "email", "subject": "ご回答ありがとうございます",
                   "text": "{{ name }}様"}],
    },
    {
        "name": "soak-app",
        "holdout_percent": 0,
        "trigger": {"event": "app_open"},
        "steps": [{"id": "task", "action": "create_task", "title": "welcome {{ name }} to the app"}],
    },
]  # fmt: skip
PROGRAMME = {"earning": {"pending_days": 0}}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the SMTP sink --------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        with self.lock:
            self.ids.append(str(msg["Message-ID"]))
        return "250 OK"


# ---- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """One restartable child process (API or worker), killed with its whole group."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        assert self.log is not None
        out = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.ready_url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(self.ready_url, timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} did not become ready; see {self.log}")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# ---- the run ---------------------------------------------------------------------------


@dataclass
class Stats:
    acked: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    events: int = 0
    answers: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _reset(url: str) -> None:
    name = sa.engine.make_url(url).database or ""
    if "soak" not in name and "test" not in name:
        sys.exit(f"refusing to wipe database {name!r}: use a database whose name has soak or test")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def setup(url: str, folder: Path, customers: int) -> tuple[Any, str, list[str]]:
    from kizuna.api.auth import create_key
    from kizuna.domain.programme import parse_programme
    from kizuna.services import journeys
    from kizuna.services.programme import config
    from kizuna.services.uow import UnitOfWork
    from kizuna.services.workspace import init_workspace
    from kizuna.store import tables as t

    _reset(url)
    ctx = init_workspace(folder, database_url=url)
    members = [f"S{n:06d}" for n in range(customers)]
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        ids = conn.execute(
            sa.insert(t.customers).returning(t.customers.c.id),
            [{"external_id": m, "name": f"顧客{m}", "email": f"{m.lower()}@example.jp",
              "signup_at": now} for m in members],
        ).scalars().all()  # fmt: skip
        conn.execute(
            sa.insert(t.consents),
            [{"customer_id": i, "channel": "email", "granted": True, "changed_at": now,
              "source": "soak"} for i in ids],
        )  # fmt: skip
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        config.apply_programme(uow, parse_programme(PROGRAMME), "soak")
        key = create_key(uow, "pos", "soak")
        uow.commit()
    for doc in JOURNEYS:
        journeys.handle_save(journeys.SaveJourney(doc), UnitOfWork(ctx.engine, ctx.settings))
        journeys.set_status(doc["name"], "active", UnitOfWork(ctx.engine, ctx.settings))
    return ctx, key, members


def shop(api: str, key: str, members: list[str], stats: Stats, stop: threading.Event,
         give_up: threading.Event, seed: int) -> None:  # fmt: skip
    """Orders through the API; each retried with its Idempotency-Key until acknowledged."""
    rng = random.Random(seed)
    with httpx.Client(base_url=api, timeout=10) as http:
        while not stop.is_set():
            order = f"SOAK-{uuid.uuid4().hex[:16]}"
            body = {"order_id": order, "member_id": rng.choice(members),
                    "lines": [{"amount": rng.randrange(500, 20000)}]}  # fmt: skip
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": order}
            started = time.perf_counter()
            while not give_up.is_set():
                try:
                    r = http.post("/v1/orders", json=body, headers=headers)
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code in (200, 201):
                    with stats.lock:
                        stats.acked.add(order)
                        stats.latencies.append(time.perf_counter() - started)
                    break
                if r is not None and r.status_code < 500 and r.status_code != 429:
                    with stats.lock:
                        stats.refused.append(f"{r.status_code} {r.text[:200]}")
                    break
                with stats.lock:
                    stats.retries += 1
                time.sleep(0.2)


def site(ctx: Any, stats: Stats, stop: threading.Event, seed: int) -> None:
    """Behaviour events and survey answers, written as a collector or importer would."""
    from kizuna.services.events import record_event
    from kizuna.store import tables as t

    rng = random.Random(seed)
    with ctx.engine.connect() as conn:
        ids = list(conn.execute(sa.select(t.customers.c.id)).scalars())
    n = 0
    while not stop.is_set():
        now = datetime.now(UTC)
        cid = rng.choice(ids)
        with ctx.engine.begin() as conn:
            record_event(conn, key=f"soak-ev-{n}", customer_id=cid,
                         type="app_open" if n % 4 == 0 else "page_view", occurred_at=now)  # fmt: skip
            if n % 3 == 0:
                conn.execute(sa.insert(t.survey_answers).values(
                    external_id=f"soak-sa-{n}", customer_id=cid, kind="nps",
                    score=rng.randrange(0, 11), answered_at=now))  # fmt: skip
                stats.answers += 1
        stats.events += 1
        n += 1
        time.sleep(0.02)


def faults(procs: list[Proc], stats: Stats, stop: threading.Event, interval: tuple[float, float],
           seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(*interval)):
        victim = rng.choice(procs)
        victim.kill()
        stats.faults[victim.name] += 1
        time.sleep(rng.uniform(0.3, 2.0))
        victim.start()


def check(ctx: Any, stats: Stats, sink: Sink, activated: datetime) -> dict[str, Any]:
    from kizuna.services.programme.checks import check_all
    from kizuna.services.uow import UnitOfWork
    from kizuna.store import automation_tables as at
    from kizuna.store import programme_tables as pt
    from kizuna.store import tables as t

    o, el, r, s, j = t.orders.c, pt.earned_lines.c, at.journey_runs.c, at.sends.c, at.journeys.c
    now = datetime.now(UTC)
    with ctx.engine.connect() as conn:
        recorded = Counter(
            conn.execute(sa.select(o.external_id).where(o.external_id.like("SOAK-%"))).scalars()
        )
        earned = Counter(conn.execute(
            sa.select(o.external_id).join(pt.earned_lines, el.order_id == o.id)
            .where(o.external_id.like("SOAK-%"))).scalars())  # fmt: skip
        runs = dict(conn.execute(
            sa.select(j.name, sa.func.count())
            .select_from(at.journey_runs.join(at.journeys, j.id == r.journey_id))
            .group_by(j.name)).all())  # fmt: skip
        due_left = conn.execute(sa.select(sa.func.count()).where(
            r.status == "active", r.due_at <= now)).scalar_one()  # fmt: skip
        unfinished = conn.execute(
            sa.select(sa.func.count()).where(r.status != "completed")
        ).scalar_one()
        sent_ids = list(conn.execute(sa.select(s.message_id).where(
            s.action == "email", s.status == "sent")).scalars())  # fmt: skip
        email_rows = conn.execute(
            sa.select(sa.func.count()).where(s.action == "email")
        ).scalar_one()
        # Each trigger's newest row, and how far each journey's enrolment has read.
        newest = {
            "soak-order": conn.execute(sa.select(sa.func.max(o.id))).scalar_one() or 0,
            "soak-survey": conn.execute(sa.select(sa.func.max(t.survey_answers.c.id))).scalar_one()
            or 0,
            "soak-app": conn.execute(
                sa.select(sa.func.max(t.events.c.id)).where(t.events.c.type == "app_open")
            ).scalar_one()
            or 0,
        }
        cursors = dict(conn.execute(sa.select(j.name, j.change_cursor)).all())
        tasks = conn.execute(sa.select(sa.func.count()).select_from(at.journey_tasks)).scalar_one()
        grants = conn.execute(sa.select(sa.func.count()).where(
            pt.ledger_entries.c.reason == "soak thanks")).scalar_one()  # fmt: skip
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        books = check_all(uow)
    delivered = Counter(sink.ids)
    missing = sorted(stats.acked - set(recorded))
    twice = [k for k, v in recorded.items() if v > 1]
    not_earned = sorted(k for k in stats.acked if earned.get(k) != 1)
    unsent = set(sent_ids) - set(delivered)
    stray = set(delivered) - set(sent_ids)
    # A trigger for a customer already in a run of that journey starts none (one run at a
    # time, by design), so "caught up" means enrolment has read every trigger row.
    lagging = {k: (cursors.get(k, 0), v) for k, v in newest.items() if cursors.get(k, 0) < v}
    invariants = {
        "acknowledged orders recorded once and earned once": not missing
        and not twice
        and not not_earned,
        "every balance equals its ledger": books == [],
        "no message sent twice": len(sent_ids) == len(set(sent_ids)) and not stray and not unsent,
        "no due step left behind": due_left == 0 and unfinished == 0 and not lagging,
        "journey effects exactly once": tasks == runs.get("soak-app", 0)
        and grants == runs.get("soak-order", 0)
        and email_rows == runs.get("soak-order", 0) + runs.get("soak-survey", 0),
    }
    return {
        "invariants": invariants,
        "details": {
            "missing_orders": missing[:10],
            "duplicated_orders": twice[:10],
            "orders_not_earned_once": not_earned[:10],
            "ledger_problems": books[:10],
            "email_rows": email_rows,
            "messages_delivered": sum(delivered.values()),
            "distinct_messages": len(delivered),
            "same_message_id_redelivered": sum(v - 1 for v in delivered.values() if v > 1),
            "sent_not_delivered": len(unsent),
            "delivered_without_ledger": len(stray),
            "runs_by_journey": runs,
            "enrolment_cursor_vs_newest_trigger": {
                k: (cursors.get(k), v) for k, v in newest.items()
            },
            "due_left": due_left,
            "unfinished_runs": unfinished,
            "tasks": tasks,
            "point_grants": grants,
        },  # fmt: skip
    }


def worker_process(workspace: str, worker_id: str) -> None:
    """A journey worker as ``kizuna worker`` runs it, enrolling every 2 s (the soak is short)."""
    from kizuna.automation.worker import run_worker
    from kizuna.bootstrap import open_context

    run_worker(open_context(workspace), worker_id=worker_id, poll_seconds=0.3,
               enroll_every_seconds=2.0, refresh_segments_every_seconds=None,
               programme_jobs_every_seconds=None, lease=timedelta(seconds=8))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--shops", type=int, default=4, help="concurrent order senders")
    parser.add_argument("--fault-min", type=float, default=8.0)
    parser.add_argument("--fault-max", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="~45 s with frequent faults")
    parser.add_argument("--keep", action="store_true", help="keep the workspace folder")
    parser.add_argument(
        "--worker-process", nargs=2, metavar=("WORKSPACE", "ID"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker_process:
        worker_process(*args.worker_process)
        return 0
    if args.smoke:
        args.duration, args.customers, args.shops = 40.0, 2000, 3
        args.fault_min, args.fault_max = 3.0, 6.0
    url = os.environ.get("KIZUNA_SOAK_POSTGRES_URL") or os.environ.get("KIZUNA_TEST_POSTGRES_URL")
    if not url:
        print("soak: set KIZUNA_SOAK_POSTGRES_URL (or KIZUNA_TEST_POSTGRES_URL) to a PostgreSQL "
              "database to soak; skipped")  # fmt: skip
        return 0

    from aiosmtpd.controller import Controller

    folder = Path(tempfile.mkdtemp(prefix="kizuna-soak-"))
    ws = folder / "ws"
    print(f"soak: {args.duration:.0f} s, {args.customers} customers, {args.shops} shops, "
          f"faults every {args.fault_min:.0f}-{args.fault_max:.0f} s; workspace {ws}")  # fmt: skip
    ctx, key, members = setup(url, ws, args.customers)
    activated = datetime.now(UTC)
    sink = Sink()
    smtp_port, api_port = free_port(), free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    base_env.update({"KIZUNA_WORKSPACE": str(ws), "KIZUNA_SMTP_PORT": str(smtp_port),
                     "KIZUNA_SERVE_WORKER": "0", "KIZUNA_SERVE_DASHBOARD": "0",
                     "KIZUNA_LOG_LEVEL": "WARNING"})  # fmt: skip
    api_url = f"http://127.0.0.1:{api_port}"
    api = Proc("api", [sys.executable, "-m", "uvicorn", "--factory", "kizuna.api:app_from_env",
                       "--host", "127.0.0.1", "--port", str(api_port), "--no-access-log"],
               base_env, ready_url=f"{api_url}/readyz", log=folder / "api.log")  # fmt: skip
    workers = [
        Proc(f"worker-{i}", [sys.executable, str(Path(__file__).resolve()), "--worker-process",
                             str(ws), f"soak-w{i}"], base_env, log=folder / f"worker-{i}.log")
        for i in (1, 2)
    ]  # fmt: skip
    procs = [api, *workers]
    stats = Stats()
    stop_load, give_up, stop_faults = threading.Event(), threading.Event(), threading.Event()
    try:
        for p in procs:
            p.start()
        started = time.monotonic()
        threads = [threading.Thread(target=shop, args=(api_url, key, members, stats, stop_load, give_up, args.seed + i))
                   for i in range(args.shops)]  # fmt: skip
        threads.append(threading.Thread(target=site, args=(ctx, stats, stop_load, args.seed)))
        injector = threading.Thread(target=faults, args=(procs, stats, stop_faults,
                                                         (args.fault_min, args.fault_max), args.seed))  # fmt: skip
        for th in threads:
            th.start()
        injector.start()
        time.sleep(args.duration)
        stop_faults.set()
        injector.join()
        stop_load.set()
        for p in procs:  # a victim being restarted when faults stopped is up again by now
            if p.popen is None or p.popen.poll() is not None:
                p.start()
        for th in threads:
            th.join(60)
        give_up.set()
        load_seconds = time.monotonic() - started
        # Drain: the workers finish what is due (leases of killed workers expire in 8 s).
        from kizuna.store import automation_tables as at

        r = at.journey_runs.c
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(3)
            with ctx.engine.connect() as conn:
                left = conn.execute(
                    sa.select(sa.func.count()).where(r.status == "active")
                ).scalar_one()
            if left == 0:
                time.sleep(3)  # one more enrolment round for the last triggers
                with ctx.engine.connect() as conn:
                    left = conn.execute(
                        sa.select(sa.func.count()).where(r.status == "active")
                    ).scalar_one()
                if left == 0:
                    break
        for p in procs:
            p.stop()
        result = check(ctx, stats, sink, activated)
    finally:
        stop_faults.set()
        stop_load.set()
        give_up.set()
        for p in procs:
            p.kill()
        smtp.stop()
    lat = sorted(stats.latencies)
    summary = {
        "seconds": round(load_seconds, 1),
        "orders_acknowledged": len(stats.acked),
        "orders_per_second": round(len(stats.acked) / load_seconds, 1),
        "order_latency_ms_p50": round(statistics.median(lat) * 1000, 1) if lat else None,
        "order_latency_ms_p95": round(lat[int(len(lat) * 0.95)] * 1000, 1) if lat else None,
        "order_retries": stats.retries,
        "orders_refused": stats.refused[:5],
        "events": stats.events,
        "survey_answers": stats.answers,
        "faults": dict(stats.faults),
        **result,
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    ok = all(result["invariants"].values()) and not stats.refused
    print(f"soak: {'all invariants hold' if ok else 'INVARIANT BROKEN'}; "
          f"{sum(stats.faults.values())} faults survived; logs in {folder}")  # fmt: skip
    ctx.dispose()
    if ok and not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
