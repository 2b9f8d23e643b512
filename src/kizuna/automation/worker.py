"""The worker loop behind ``kizuna worker``: enrol, claim, process, repeat.

Any number of workers may run against PostgreSQL; on SQLite they take turns
at the single writer. Stopping with SIGTERM/Ctrl+C finishes the current run
first; SIGKILL is also safe, since unfinished leases simply expire.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import sqlalchemy as sa

from kizuna.automation.runner import LEASE, ClaimedBatch, Runner, claim
from kizuna.bootstrap import Context
from kizuna.errors import KizunaError
from kizuna.services import journeys, segments
from kizuna.services.doctor import Heartbeat
from kizuna.services.scoring_jobs import JobThread
from kizuna.services.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    claimed: int = 0
    enrolled: int = 0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def run_worker(
    ctx: Context,
    *,
    worker_id: str | None = None,
    once: bool = False,
    batch: int = 100,
    poll_seconds: float = 5.0,
    enroll_every_seconds: float = 60.0,
    refresh_segments_every_seconds: float | None = 3600.0,
    programme_jobs_every_seconds: float | None = 900.0,
    clock: Callable[[], datetime] | None = None,
    lease: timedelta = LEASE,
    progress: Callable[[WorkerStats], None] | None = None,
    stop_event: threading.Event | None = None,
) -> WorkerStats:
    """Run due journey steps until stopped (or, with ``once``, until nothing is due).

    Stopped by SIGTERM when run as its own process, or by ``stop_event`` when
    ``kizuna serve`` runs it in a thread of the web process.

    Every ``programme_jobs_every_seconds`` (first at start; None = never) it
    also runs the loyalty programme's scheduled jobs — release pending
    points, expire lots, review tiers, birthday points, expiring-soon events —
    once the programme is in use in the workspace. Each job is idempotent, so
    any number of workers may run them.
    """
    now = clock or (lambda: datetime.now(UTC))
    worker = worker_id or default_worker_id()
    runner = Runner(ctx.engine, ctx.settings, worker, now)
    # Liveness for `kizuna doctor` and /metrics (operations area).
    heartbeat = Heartbeat(ctx.engine, worker)
    # Scoring runs queued over the API (POST /v1/scoring-jobs) run beside the journeys.
    scoring_jobs = JobThread(ctx, worker)
    stats = WorkerStats()
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if in_main_thread else None
    last_enroll = last_refresh = last_jobs = float("-inf")
    # On PostgreSQL the next batch is claimed and prepared while the current
    # one is on the wire. SQLite has a single writer: preparing there would
    # hold back the current batch's ``sent`` marks, so it goes one at a time.
    overlap = ctx.engine.dialect.name == "postgresql"
    pending: ClaimedBatch | None = None
    try:
        while not stopping and not (stop_event is not None and stop_event.is_set()):
            # Programme state first: tiers and balances feed the segments below.
            jobs_due = programme_jobs_every_seconds is not None and (
                _time.monotonic() - last_jobs >= programme_jobs_every_seconds
            )
            if jobs_due and _busy_tolerant(ctx, lambda: _programme_jobs(ctx, now())) is not None:
                last_jobs = _time.monotonic()
            # Scheduled refresh: the entries and exits it records trigger journeys
            # in the enrolment right below. Concurrent workers serialise on the
            # segment row, and a repeat refresh records nothing new.
            refresh_due = refresh_segments_every_seconds is not None and (
                _time.monotonic() - last_refresh >= refresh_segments_every_seconds
            )
            if refresh_due and _busy_tolerant(ctx, lambda: _refresh(ctx, now())) is not None:
                last_refresh = _time.monotonic()
            if _time.monotonic() - last_enroll >= enroll_every_seconds:
                enrolled = _busy_tolerant(ctx, lambda: _enroll(ctx, now()))
                if enrolled is not None:
                    stats.enrolled += enrolled
                    last_enroll = _time.monotonic()
            _busy_tolerant(ctx, lambda: scoring_jobs.poll(inline=once))
            ids = claim(ctx.engine, worker, now(), batch, lease)
            stats.claimed += len(ids)
            heartbeat.beat(stats.claimed)
            prepared = runner.begin_batch(ids) if ids else None
            if pending is not None:
                pending.batch.wait()  # its messages are all accepted (or failed)
            if prepared is not None:
                prepared.batch.start()
            # The previous batch's step changes and its one-by-one runs are
            # recorded while the next one is on the wire.
            finishing, pending = pending, prepared if overlap else None
            if finishing is not None:
                runner.end_batch(finishing, lambda: stopping)
            if prepared is not None and not overlap:
                runner.end_batch(prepared, lambda: stopping)
            if progress is not None and ids:
                progress(stats)
            if not ids:
                if once:
                    break
                if stop_event is not None:
                    stop_event.wait(poll_seconds)
                else:
                    _time.sleep(poll_seconds)
    finally:
        try:
            if pending is not None:
                # Its messages are on the wire: let them finish and record them.
                runner.end_batch(pending, lambda: True)
        finally:
            heartbeat.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        runner.close()
        for action_name in ("email",):
            from kizuna.automation.actions import ACTIONS

            sender = getattr(ACTIONS.get(action_name), "sender", None)
            if sender is not None:
                sender.close()
    return stats


def _refresh(ctx: Context, now: datetime) -> int:
    return len(segments.refresh_all(UnitOfWork(ctx.engine, ctx.settings), "schedule", now))


def _programme_jobs(ctx: Context, now: datetime) -> int:
    """The programme's scheduled jobs once; nothing in a workspace that never used the programme."""
    from kizuna.services.programme.config import PROGRAMME_FILE
    from kizuna.services.programme.jobs import run_all
    from kizuna.store import programme_tables as pt

    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        applied = uow.conn.execute(sa.select(pt.programme_versions.c.id).limit(1)).first()
        if applied is None and not (ctx.settings.workspace / PROGRAMME_FILE).exists():
            return 0
        uow.rollback()
        try:
            done = sum(run_all(uow, now).values())
            # Referral rewards wait for the return window; settling is idempotent.
            from kizuna.services.referrals import settle_job

            return done + settle_job(ctx.engine, ctx.settings, now)
        except KizunaError as exc:
            # A broken programme.toml must not stop the journeys; the next period retries.
            log.warning("programme jobs skipped: %s", exc)
            return 0


def _enroll(ctx: Context, now: datetime) -> int:
    started = journeys.enroll_all(UnitOfWork(ctx.engine, ctx.settings), now)
    # Runs waiting for an event the customer has now done become due.
    journeys.wake_event_waits(UnitOfWork(ctx.engine, ctx.settings), now)
    return started


def _busy_tolerant(ctx: Context, job: Callable[[], int]) -> int | None:
    """Run ``job``; on SQLite, a clash with another writer means "next round" (None).

    Enrolment and refresh read, then write, in one transaction; SQLite refuses
    such a transaction outright if another process wrote in between. Both are
    idempotent, so trying again on the next loop is safe.
    """
    try:
        return job()
    except sa.exc.OperationalError as exc:
        if ctx.engine.dialect.name != "sqlite" or "locked" not in str(exc):
            raise
        return None


__all__ = ["LEASE", "WorkerStats", "run_worker"]
