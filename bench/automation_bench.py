"""Automation benchmark: segment refresh, and journey email throughput over real SMTP.

* segment refresh: a rule with an attribute, consent and a windowed order
  aggregate over N customers, first refresh (everyone enters) and a second
  one (no change);
* messages/s: M customers entering a one-email journey, delivered by the
  worker to a local SMTP sink — one worker in-process and two ``kizuna
  worker`` processes on SQLite, one and two processes on PostgreSQL — and,
  in the same run and to the same sink, the references:

  - a plain ``smtplib`` loop sending the same messages over one connection
    (what a simple sender reaches: the issue's reference);
  - the sink's own ceiling: four ``smtplib`` sender *processes* at once,
    with the CPU the sink spent per message — when the worker is near this
    figure, the sink (and the two cores it shares), not the worker, is the
    limit.

  Each worker figure is given twice: wall clock including process start,
  and "steady" — from the first ``sending`` row to the last ``sent`` in
  the ledger — plus the worker's CPU per message (load-independent). The
  sink must have received at least as many messages as were ledgered sent.

    python bench/automation_bench.py --customers 1000000   # the issue's sizes
    python bench/automation_bench.py --smoke          # tiny, for CI
    python bench/automation_bench.py --skip-segment --only pg1   # one row

On PostgreSQL a worker claims and prepares its next batch (claim, reads,
``sending`` rows) while the current batch is on the wire, so "steady" is
what the worker sustains and "wall incl. start" adds the process start and
the last batch's tail. Compare rows only at the same load average; the
worker CPU per message is the figure that does not depend on it.
    python bench/automation_bench.py --sink aiosmtpd  # the tests' library as the sink

The sink (``bench/smtp_sink.py``) runs in its own process(es): ``lean`` (the
default) is a small asyncio SMTP server that offers PIPELINING; ``aiosmtpd``
is the library with PIPELINING announced; ``--sink-processes`` spreads
connections over several listeners with SO_REUSEPORT.

PostgreSQL runs when ``KIZUNA_BENCH_POSTGRES_URL`` or ``KIZUNA_TEST_POSTGRES_URL``
is set (its ``public`` schema is dropped and recreated).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
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


class SMTPSink:
    """``bench/smtp_sink.py`` in its own process group, as a real mail server would be.

    Sharing the benchmark's process (and its GIL) would make the sink, not
    the sender, the thing measured.
    """

    def __init__(self, impl: str, processes: int) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("smtp_sink.py")), "--port",
             str(self.port), "--impl", impl, "--processes", str(processes)],
            stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self.processes = processes
        assert self.proc.stdout is not None
        ready = [self.proc.stdout.readline() for _ in range(processes)]
        if not all(line.startswith(b"ready") for line in ready):
            self.proc.kill()
            raise SystemExit("the SMTP sink did not start")

    def stop(self) -> tuple[int, float]:
        """Stop every listener; (messages received, CPU seconds the sink spent)."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        counts = [line.split() for line in out.decode().splitlines() if line.startswith("count")]
        return sum(int(c[1]) for c in counts), sum(float(c[3]) for c in counts)


def sent_count(ctx: Context) -> tuple[int, float]:
    """Messages the journey ledgered as accepted, and the seconds from first intent to last accept."""
    from kizuna.store import automation_tables as at

    s = at.sends
    with ctx.engine.connect() as conn:
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.min(s.c.created_at), sa.func.max(s.c.done_at)).where(
                s.c.status == "sent"
            )
        ).one()
    span = (row[2] - row[1]).total_seconds() if row[0] else 0.0
    return int(row[0]), span


def messages_for(ctx: Context, m: int) -> list[Message]:
    settings = ctx.settings
    params = JOURNEY["steps"][0]  # type: ignore[index]
    return [
        build_message(settings, params, {"id": i, "name": f"顧客{i}", "email": f"c{i}@example.jp"},
                      f"k{i}")
        for i in range(1, m + 1)
    ]  # fmt: skip


def bench_smtplib(port: int, messages: list[Message]) -> float:
    """The reference: the same messages through one plain smtplib connection."""
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for msg in messages:
            smtp.send_message(msg)
    return len(messages) / (time.perf_counter() - t0)


def _blast(port: int, payloads: list[bytes], go: Any) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        go.wait()
        for i, data in enumerate(payloads):
            smtp.sendmail("kizuna@localhost", [f"c{i}@example.jp"], data)


def sink_ceiling(impl: str, processes: int, messages: list[Message], senders: int = 4) -> str:
    """What the sink takes from ``senders`` plain smtplib processes at once, and its CPU per message."""
    import multiprocessing

    payloads = [m.as_bytes() for m in messages]
    mp = multiprocessing.get_context("fork")
    sink = SMTPSink(impl, processes)
    go = mp.Event()
    share = len(payloads) // senders
    procs = [
        mp.Process(target=_blast, args=(sink.port, payloads[i * share : (i + 1) * share], go))
        for i in range(senders)
    ]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # every sender connected and waiting
    t0 = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - t0
    received, cpu = sink.stop()
    per_message = cpu / max(received, 1)
    return (
        f"{received / elapsed:,.0f} messages/s from {senders} smtplib processes at once; "
        f"sink CPU {per_message * 1e6:,.0f} µs/message, so one core of sink takes "
        f"~{1 / max(per_message, 1e-9):,.0f} messages/s"
    )


def prepare_journey(ctx: Context, m: int) -> None:
    seed(ctx, m, birthday_today=True)
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("bench", "active", uow)
    journeys.enroll_all(uow)


def worker_processes(ctx: Context, port: int, count: int, batch: int) -> tuple[float, float]:
    """Run ``count`` ``kizuna worker --once`` processes; (wall seconds, their CPU seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update({"KIZUNA_SMTP_PORT": str(port), "KIZUNA_DATABASE_URL": ctx.settings.database_url,
                "KIZUNA_SMTP_CONNECTIONS": str(ctx.settings.smtp_connections)})  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
                str(batch),
                "--id",
                f"bench{i}",
                "--refresh-minutes",
                "0",
                "--programme-jobs-minutes",
                "0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for i in range(count)
    ]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def report(
    label: str, ctx: Context, elapsed: float, cpu: float, sink: SMTPSink, ref: float
) -> None:
    """One result line; ``cpu`` is the workers' CPU without their start-up."""
    sent, span = sent_count(ctx)
    received, sink_cpu = sink.stop()
    if received < sent:
        raise SystemExit(f"the sink received {received} messages but {sent} were ledgered sent")
    steady = sent / span if span else 0.0
    wall = sent / elapsed
    print(
        f"journey email, {label}: {sent:,} messages sent\n"
        f"    steady (first sending row to last sent mark): {steady:,.0f} messages/s = "
        f"{steady / ref:.2f}x the smtplib loop\n"
        f"    wall incl. start ({elapsed:.2f} s): {wall:,.0f} messages/s = {wall / ref:.2f}x\n"
        f"    worker CPU {cpu / max(sent, 1) * 1e6:,.0f} µs/message (load-independent), "
        f"sink CPU {sink_cpu / max(received, 1) * 1e6:,.0f} µs/message; "
        f"load average {os.getloadavg()[0]:.2f}"
    )  # fmt: skip


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
    parser.add_argument(
        "--messages", type=int, default=100_000,
        help="customers entering the one-email journey (80%% consent, so ~0.8x are sent); "
        "the issue's size is 100,000",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=500, help="runs a worker claims at once")
    parser.add_argument(
        "--smtp-connections", type=int, default=8,
        help="the worker's smtp_connections setting (product default 4): more connections "
        "mean larger group commits of the sent marks",
    )  # fmt: skip
    parser.add_argument("--sink", choices=["lean", "aiosmtpd"], default="lean")
    parser.add_argument("--sink-processes", type=int, default=1)
    parser.add_argument("--skip-segment", action="store_true", help="only the email figures")
    parser.add_argument(
        "--only", nargs="+", choices=["segment", "sqlite1", "sqlite2", "pg1", "pg2"],
        help="run only these rows (the references and the sink ceiling run with any worker row)",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.messages = 2000, 200
    pg_url = os.environ.get("KIZUNA_BENCH_POSTGRES_URL") or os.environ.get(
        "KIZUNA_TEST_POSTGRES_URL"
    )
    os.environ.pop("KIZUNA_DATABASE_URL", None)
    os.environ["KIZUNA_SMTP_CONNECTIONS"] = str(args.smtp_connections)
    sink_args = (args.sink, args.sink_processes)
    print(
        f"load average {os.getloadavg()[0]:.2f} at start; sink: {args.sink} x{args.sink_processes}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = set(args.only or ["segment", "sqlite1", "sqlite2", "pg1", "pg2"])
        if not args.skip_segment and "segment" in rows:
            ctx = init_workspace(Path(tmp) / "seg")
            seg = bench_segment(ctx, args.customers)
            ctx.dispose()
            print(f"segment refresh, SQLite, {args.customers:,} customers: first {seg['first_s']:.2f} s "
                  f"({seg['members']:,.0f} members), again {seg['again_s']:.2f} s")  # fmt: skip

        if not rows - {"segment"}:
            print(f"load average {os.getloadavg()[0]:.2f} at end")
            return
        ctx = init_workspace(Path(tmp) / "ref")
        messages = messages_for(ctx, min(args.messages, 20_000))
        ctx.dispose()
        sink = SMTPSink(*sink_args)
        reference = bench_smtplib(sink.port, messages)
        sink.stop()
        print(
            f"reference: plain smtplib loop, one connection, same sink: {reference:,.0f} messages/s"
        )
        print(f"sink ceiling: {sink_ceiling(*sink_args, messages)}")
        del messages  # tens of thousands of live objects would slow the worker's GC below

        only = rows
        if "sqlite1" in only:
            ctx = init_workspace(Path(tmp) / "mail")
            prepare_journey(ctx, args.messages)
            sink = SMTPSink(*sink_args)
            c0, t0 = time.process_time(), time.perf_counter()
            run_worker(
                Context(replace(ctx.settings, smtp_port=sink.port)),
                once=True,
                batch=args.batch,
                programme_jobs_every_seconds=None,
                refresh_segments_every_seconds=None,
            )
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            report("SQLite, 1 worker (in-process)", ctx, elapsed, cpu, sink, reference)
            ctx.dispose()

        runs: list[tuple[str, str | None, int]] = []
        if "sqlite2" in only:
            runs.append(("SQLite", None, 2))
        if pg_url:
            runs += [("PostgreSQL", pg_url, n) for n in (1, 2) if f"pg{n}" in only]
        for name, url, workers in runs:
            if url:
                reset_postgres(url)
            ctx = init_workspace(Path(tmp) / f"{name}{workers}", database_url=url)
            prepare_journey(ctx, args.messages)
            sink = SMTPSink(*sink_args)
            elapsed, cpu = worker_processes(ctx, sink.port, workers, args.batch)
            # A pass with nothing left to do: the CPU of starting a worker process.
            _, start_cpu = worker_processes(ctx, sink.port, 1, args.batch)
            cpu = max(cpu - workers * start_cpu, 0.0)
            report(f"{name}, {workers} worker process(es)", ctx, elapsed, cpu, sink,
                   reference)  # fmt: skip
            ctx.dispose()
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
