"""Real ``kizuna worker`` processes: SIGKILL mid-batch, restart, and two at once on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.automation.smtp_sink import Sink, smtp_sink
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

N = 120
JOURNEY = {
    "name": "today",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [
        {
            "id": "greet",
            "action": "email",
            "subject": "おめでとう {{ name }}",
            "text": "{{ name }}様",
        }
    ],
}


def seed(ctx: Context) -> None:
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    with ctx.engine.begin() as conn:
        for n in range(N):
            cid = add(conn, t.customers, external_id=f"k{n}", name=f"顧客{n}", email=f"k{n}@example.jp",
                      birthday=today.replace(year=1990))  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("today", "active", uow)


def start_worker(ctx: Context, port: int, name: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update({"KIZUNA_SMTP_PORT": str(port), "KIZUNA_DATABASE_URL": ctx.settings.database_url,
                "NO_COLOR": "1"})  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "kizuna", "-w", str(ctx.settings.workspace), "worker", "--once",
         "--batch", "10", "--lease-seconds", "2", "--id", name],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def recipients(sink: Sink) -> Counter[str]:
    return Counter(str(m["To"]).split("<")[1].rstrip(">") for m in sink.messages)


def test_sigkill_mid_batch_then_restart_no_gap_and_no_silent_duplicate(workspace: Context) -> None:
    seed(workspace)
    with smtp_sink(delay=0.01) as (sink, port):
        first = start_worker(workspace, port, "w-killed")
        deadline = time.monotonic() + 60
        while len(sink.messages) < N // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        sent_before = len(sink.messages)
        assert 0 < sent_before < N
        time.sleep(2.5)  # let the killed worker's leases expire
        second = start_worker(workspace, port, "w-restarted")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        got = recipients(sink)
        assert set(got) == {f"k{n}@example.jp" for n in range(N)}  # no gap
        repeated = [r for r, n in got.items() if n > 1]
        # Only messages in flight at the kill can repeat — at most one per SMTP
        # connection of the worker — and then with the same Message-ID.
        assert len(repeated) <= workspace.settings.smtp_connections
        for r in repeated:
            ids = {str(m["Message-ID"]) for m in sink.messages if r in str(m["To"])}
            assert len(ids) == 1


def test_two_workers_at_once_never_send_twice(workspace: Context) -> None:
    """On PostgreSQL they claim with SKIP LOCKED; on SQLite they queue for the single writer."""
    seed(workspace)
    # A slow sink makes the two overlap: one worker alone needs N x 0.12 s over
    # its smtp_connections (4) = 3.6 s, more than a loaded machine takes to
    # start the second process (at 0.03 s it finished alone within ~1 s).
    with smtp_sink(delay=0.12) as (sink, port):
        workers = [start_worker(workspace, port, f"w{i}") for i in range(2)]
        outputs = [w.communicate(timeout=120) for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        got = recipients(sink)
        assert len(sink.messages) == N and set(got.values()) == {1}
        claimed = [int(out.split("worker done: ")[1].split()[0]) for out, _ in outputs]
        assert sum(claimed) >= N and all(c > 0 for c in claimed), claimed  # both did real work
