"""Automation benchmark: segment refresh, and journey email throughput over real SMTP.

* segment refresh: a rule with an attribute, consent and a windowed order
  aggregate over N customers, first refresh (everyone enters) and a second
  one (no change);
* messages/s: M customers entering a one-email journey, delivered by
  ``kizuna worker`` to a local aiosmtpd sink — one worker on SQLite, and one
  and two worker processes on PostgreSQL — and, in the same run, a plain
  ``smtplib`` loop sending the same messages to the same sink as the
  reference (the ceiling of the sink and the SMTP stack).

    python bench/automation_bench.py --customers 1000000 --messages 100000
    python bench/automation_bench.py --smoke          # tiny, for CI

PostgreSQL runs when ``KIZUNA_BENCH_POSTGRES_URL`` or ``KIZUNA_TEST_POSTGRES_URL``
is set (its ``public`` schema is dropped and recreated).
"""

from __future__ import annotations

import argparse
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.automation.channels.email import build_message
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys, segments
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace
from kizuna.store import tables as t

SEGMENT = {
    "name": "bench",
    "rule": {
        "and": [
            {"field": "attributes.plan", "value": "gold"},
            {"consent": "email"},
            {"aggregate": "orders", "op": "gte", "value": 1, "days": 90},
        ]
    },
}
JOURNEY = {
    "name": "bench",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [
        {
            "id": "mail",
            "action": "email",
            "subject": "{{ name }}様へ",
            "text": "こんにちは {{ name }}様",
        }
    ],
}


def seed(ctx: Context, n: int, birthday_today: bool) -> None:
    rng = random.Random(1)
    today = local_date(datetime.now(UTC), ZoneInfo(ctx.settings.timezone))
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        for start in range(0, n, 20000):
            ids = range(start + 1, min(n, start + 20000) + 1)
            conn.execute(
                sa.insert(t.customers),
                [
                    {"id": i, "external_id": f"C{i}", "name": f"顧客{i}", "email": f"c{i}@example.jp",
                     "birthday": today.replace(year=1990) if birthday_today else None,
                     "attributes": {"plan": rng.choice(["gold", "silver", "bronze"])}}
                    for i in ids
                ],
            )  # fmt: skip
            conn.execute(
                sa.insert(t.consents),
                [{"customer_id": i, "channel": "email", "granted": rng.random() < 0.8,
                  "changed_at": now, "source": "bench"} for i in ids],
            )  # fmt: skip
            conn.execute(
                sa.insert(t.orders),
                [{"external_id": f"O{i}", "customer_id": i, "total_amount": 1000,
                  "ordered_at": now - timedelta(days=rng.randrange(200))} for i in ids],
            )  # fmt: skip


def bench_segment(ctx: Context, n: int) -> dict[str, float]:
    seed(ctx, n, birthday_today=False)
    uow = UnitOfWork(ctx.engine, ctx.settings)
    segments.handle_save(segments.SaveSegment(SEGMENT), uow)
    t0 = time.perf_counter()
    first = segments.handle_refresh(segments.RefreshSegment("bench"), uow)
    t1 = time.perf_counter()
    segments.handle_refresh(segments.RefreshSegment("bench"), uow)
    t2 = time.perf_counter()
    return {"members": first.members, "first_s": t1 - t0, "again_s": t2 - t1}


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    """An aiosmtpd sink in its own process, as a real mail server would be.

    Sharing the benchmark's process (and its GIL) would make the sink, not
    the sender, the thing measured.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the SMTP sink did not start")


def sent_count(ctx: Context) -> int:
    """Messages the journey ledgered as accepted by the server."""
    from kizuna.store import automation_tables as at

    with ctx.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(at.sends.c.status == "sent")).scalar_one()
        )


def bench_smtplib(ctx: Context, port: int, m: int) -> float:
    """The reference: the same messages through one smtplib connection."""
    from dataclasses import replace

    settings = replace(ctx.settings, smtp_port=port)
    params = JOURNEY["steps"][0]  # type: ignore[index]
    messages = [
        build_message(
            settings, params, {"id": i, "name": f"顧客{i}", "email": f"c{i}@example.jp"}, f"k{i}"
        )
        for i in range(1, m + 1)
    ]
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for msg in messages:
            smtp.send_message(msg)
    return m / (time.perf_counter() - t0)


def prepare_journey(ctx: Context, m: int) -> None:
    seed(ctx, m, birthday_today=True)
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("bench", "active", uow)


def worker_processes(ctx: Context, port: int, count: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update({"KIZUNA_SMTP_PORT": str(port), "KIZUNA_DATABASE_URL": ctx.settings.database_url})
    journeys.enroll_all(UnitOfWork(ctx.engine, ctx.settings))
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kizuna",
                "-w",
                str(ctx.settings.workspace),
                "worker",
                "--once",
                "--batch",
                "200",
                "--id",
                f"bench{i}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for i in range(count)
    ]
    for p in procs:
        p.wait()
    return time.perf_counter() - t0


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.messages = 2000, 200
    pg_url = os.environ.get("KIZUNA_BENCH_POSTGRES_URL") or os.environ.get(
        "KIZUNA_TEST_POSTGRES_URL"
    )
    os.environ.pop("KIZUNA_DATABASE_URL", None)
    sink, port = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = init_workspace(Path(tmp) / "seg")
            seg = bench_segment(ctx, args.customers)
            ctx.dispose()
            print(f"segment refresh, SQLite, {args.customers:,} customers: first {seg['first_s']:.2f} s "
                  f"({seg['members']:,.0f} members), again {seg['again_s']:.2f} s")  # fmt: skip

            ctx = init_workspace(Path(tmp) / "mail")
            prepare_journey(ctx, args.messages)
            from dataclasses import replace

            journeys.enroll_all(UnitOfWork(ctx.engine, ctx.settings))
            t0 = time.perf_counter()
            run_worker(
                Context(replace(ctx.settings, smtp_port=port)),
                once=True,
                batch=200,
                programme_jobs_every_seconds=None,
                refresh_segments_every_seconds=None,
            )
            elapsed = time.perf_counter() - t0
            sent = sent_count(ctx)
            print(f"journey email, SQLite, 1 worker (in-process): {sent:,} messages in {elapsed:.2f} s "
                  f"= {sent / elapsed:,.0f} messages/s")  # fmt: skip
            reference = bench_smtplib(ctx, port, args.messages)
            print(f"plain smtplib loop to the same sink: {reference:,.0f} messages/s; "
                  f"the worker reaches {sent / elapsed / reference:.2f}x of it")  # fmt: skip
            ctx.dispose()

            if pg_url:
                for workers in (1, 2):
                    reset_postgres(pg_url)
                    ctx = init_workspace(Path(tmp) / f"pg{workers}", database_url=pg_url)
                    prepare_journey(ctx, args.messages)
                    elapsed = worker_processes(ctx, port, workers)
                    sent = sent_count(ctx)
                    print(f"journey email, PostgreSQL, {workers} worker process(es): {sent:,} messages in "
                          f"{elapsed:.2f} s = {sent / elapsed:,.0f} messages/s")  # fmt: skip
                    ctx.dispose()
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
