"""Scoring runs asked for over the API or the dashboard, run by a worker.

A scoring run over a million customers takes minutes: longer than a proxy
lets an HTTP request live, and heavy enough that two at once only slow each
other down. So a request *queues* a job and answers at once; a worker
(``kizuna worker``, or the one inside ``kizuna serve``) claims it, runs the
same :func:`kizuna.services.scoring.score` the CLI runs, and records the
run it made or, if the data cannot be scored, a message saying what to fix.

At most one job is pending (queued or running) at a time: a second request
while one is pending gets that job back, since a run started a moment later
would score the same data. A worker beats ``heartbeat_at`` while it runs a
job; a job whose heartbeat is older than :data:`STALE` belonged to a worker
that died, and the next worker to look queues it again (up to
:data:`MAX_ATTEMPTS` times, then it fails with that reason). Runs are
versioned and never changed, so a job run twice at worst stores two
identical runs; it never loses one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.errors import KizunaError, NotFound, ValidationError
from kizuna.store import tables as t
from kizuna.store.scoring_tables import scoring_jobs as j

log = logging.getLogger(__name__)

#: A running job whose worker has not beaten for this long is taken to be orphaned.
STALE = timedelta(minutes=5)
#: How often a worker running a job beats its heartbeat.
BEAT_SECONDS = 30.0
#: Runs of one job cut short by a dying worker before the job is given up.
MAX_ATTEMPTS = 3

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobInfo:
    """One scoring job as the API and the dashboard show it."""

    id: int
    status: str
    as_of: date | None
    requested_at: datetime
    requested_by: str
    started_at: datetime | None
    finished_at: datetime | None
    stage: str | None
    attempts: int
    run_id: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        def iso(v: date | datetime | None) -> str | None:
            return v.isoformat() if v is not None else None

        return {
            "id": self.id,
            "status": self.status,
            "as_of": iso(self.as_of),
            "requested_at": iso(self.requested_at),
            "requested_by": self.requested_by,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "stage": self.stage,
            "attempts": self.attempts,
            "run_id": self.run_id,
            "error": self.error,
        }


def _info(row: sa.Row[Any]) -> JobInfo:
    return JobInfo(
        id=int(row.id),
        status=row.status,
        as_of=row.as_of,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        stage=row.stage,
        attempts=int(row.attempts),
        run_id=None if row.run_id is None else int(row.run_id),
        error=row.error,
    )


def _pending(conn: sa.Connection) -> sa.Row[Any] | None:
    return conn.execute(sa.select(j).where(j.c.pending == 1)).first()


def enqueue(
    ctx: Context, *, as_of: date | None, requested_by: str, now: Clock = _utcnow
) -> tuple[JobInfo, bool]:
    """Queue a scoring run; returns the job and whether it is new.

    Refuses (``ValidationError``) when there is nothing to score yet. When a
    job is already queued or running, returns that one (``False``).
    """
    with ctx.engine.connect() as conn:
        if conn.execute(sa.select(t.orders.c.id).limit(1)).first() is None:
            raise ValidationError(
                "nothing to score: there are no orders yet; ingest orders first "
                "(POST /v1/imports or `kizuna import`)"
            )
    for _ in range(3):
        try:
            with ctx.engine.begin() as conn:
                existing = _pending(conn)
                if existing is not None:
                    return _info(existing), False
                row = conn.execute(
                    j.insert()
                    .values(
                        status="queued",
                        pending=1,
                        as_of=as_of,
                        requested_at=now(),
                        requested_by=requested_by[:100],
                        attempts=0,
                    )
                    .returning(*j.c)
                ).one()
                return _info(row), True
        except sa.exc.IntegrityError:
            continue  # another request queued one between our read and insert: return it
    raise KizunaError("could not queue the scoring run; try again")  # pragma: no cover


def get(ctx: Context, job_id: int) -> JobInfo:
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(j).where(j.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no scoring job {job_id}; list them with GET /v1/scoring-jobs")
    return _info(row)


def page(ctx: Context, after: int, limit: int) -> list[JobInfo]:
    """Jobs with an id above ``after``, oldest first (``limit + 1`` to tell if more follow)."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(j).where(j.c.id > after).order_by(j.c.id).limit(limit + 1)
        ).all()
    return [_info(r) for r in rows]


def recent(ctx: Context, limit: int) -> list[JobInfo]:
    """The newest ``limit`` jobs, newest first (the operations page)."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(j).order_by(j.c.id.desc()).limit(limit)).all()
    return [_info(r) for r in rows]


def has_work(ctx: Context, now: Clock = _utcnow) -> bool:
    """A queued job, or an orphaned one to queue again: cheap enough for every worker loop."""
    waiting = sa.or_(
        j.c.status == "queued",
        sa.and_(j.c.status == "running", j.c.heartbeat_at < now() - STALE),
    )
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(j.c.id).where(j.c.pending == 1, waiting)).first() is not None


def _requeue_orphans(conn: sa.Connection, at: datetime) -> None:
    """Queue again the jobs whose worker stopped beating; give up after MAX_ATTEMPTS."""
    cutoff = at - STALE
    orphaned = sa.and_(j.c.status == "running", j.c.heartbeat_at < cutoff)
    conn.execute(
        j.update()
        .where(orphaned, j.c.attempts >= MAX_ATTEMPTS)
        .values(
            status="failed",
            pending=None,
            finished_at=at,
            error=f"the worker running it stopped {MAX_ATTEMPTS} times; look at the worker's "
            "log (memory?) and start the run again, or run `kizuna score` by hand",
        )
    )
    conn.execute(j.update().where(orphaned).values(status="queued", claimed_by=None, stage=None))


def claim(ctx: Context, worker: str, now: Clock = _utcnow) -> JobInfo | None:
    """Take the queued job for ``worker``, or None when there is none (or another took it).

    The claim is one conditional UPDATE on the job's status, so of two
    workers (on any hosts) exactly one gets it.
    """
    at = now()
    with ctx.engine.begin() as conn:
        _requeue_orphans(conn, at)
        queued = conn.execute(
            sa.select(j.c.id).where(j.c.status == "queued").order_by(j.c.id).limit(1)
        ).first()
        if queued is None:
            return None
        row = conn.execute(
            j.update()
            .where(j.c.id == queued.id, j.c.status == "queued")
            .values(
                status="running",
                claimed_by=worker[:64],
                started_at=at,
                heartbeat_at=at,
                attempts=j.c.attempts + 1,
                stage="extract",
            )
            .returning(*j.c)
        ).first()
    return None if row is None else _info(row)


def _beat(ctx: Context, job_id: int, worker: str, at: datetime, stage: str | None = None) -> None:
    values: dict[str, Any] = {"heartbeat_at": at}
    if stage is not None:
        values["stage"] = stage[:40]
    with ctx.engine.begin() as conn:
        conn.execute(
            j.update()
            .where(j.c.id == job_id, j.c.claimed_by == worker, j.c.status == "running")
            .values(**values)
        )


def _finish(ctx: Context, job_id: int, worker: str, at: datetime, **values: Any) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(
            j.update()
            .where(j.c.id == job_id, j.c.claimed_by == worker, j.c.status == "running")
            .values(pending=None, finished_at=at, stage=None, **values)
        )


def run(ctx: Context, job: JobInfo, worker: str, now: Clock = _utcnow) -> JobInfo:
    """Run a claimed job to its end: ``done`` with the run's id, or ``failed`` with why."""
    from kizuna.services import scoring

    stop = threading.Event()

    def beat_forever() -> None:
        while not stop.wait(BEAT_SECONDS):
            try:
                _beat(ctx, job.id, worker, now())
            except sa.exc.OperationalError as exc:  # a busy SQLite writer: next beat
                log.debug("scoring job heartbeat skipped: %s", exc)

    beater = threading.Thread(target=beat_forever, name=f"scoring-job-{job.id}", daemon=True)
    beater.start()
    try:
        info, _ = scoring.score(
            ctx,
            as_of=job.as_of,
            dashboard=True,
            progress=lambda stage, _what: _beat(ctx, job.id, worker, now(), stage),
        )
    except KizunaError as exc:
        # The data cannot be scored as it is (the message says what to do);
        # the run was rolled back and nothing is stored. Retrying cannot help.
        log.warning("scoring job %s failed: %s", job.id, exc)
        _finish(ctx, job.id, worker, now(), status="failed", error=str(exc)[:2000])
    except Exception as exc:
        # Not the data's fault: fail the job (a retry would fail the same way)
        # and leave the details to the worker's log, not the API.
        log.exception("scoring job %s crashed", job.id)
        _finish(
            ctx,
            job.id,
            worker,
            now(),
            status="failed",
            error=f"scoring stopped with an internal error ({type(exc).__name__}); nothing "
            "was stored. The worker's log has the details; start the run again once fixed",
        )
    else:
        _finish(ctx, job.id, worker, now(), status="done", run_id=info.id)
    finally:
        stop.set()
    return get(ctx, job.id)


def run_next(ctx: Context, worker: str, now: Clock = _utcnow) -> JobInfo | None:
    """Claim and run the queued job, if there is one; what the worker calls."""
    job = claim(ctx, worker, now)
    return None if job is None else run(ctx, job, worker, now)


class JobThread:
    """Runs scoring jobs beside a worker's journey loop, one at a time.

    A run takes minutes at scale; in its own thread it does not hold up due
    journey steps. ``poll`` is called on every loop of the worker and costs
    one indexed lookup when there is nothing to do. With ``inline`` (a
    worker run with ``--once``, and tests) the job runs to its end in the
    caller.
    """

    def __init__(self, ctx: Context, worker: str, now: Clock = _utcnow) -> None:
        self.ctx, self.worker, self.now = ctx, worker, now
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self, inline: bool = False) -> int:
        """Start (or, ``inline``, run) the queued job; 1 when one was started."""
        if self.busy or not has_work(self.ctx, self.now):
            return 0
        if inline:
            return 0 if run_next(self.ctx, self.worker, self.now) is None else 1
        self._thread = threading.Thread(target=self._run, name="scoring-jobs", daemon=True)
        self._thread.start()
        return 1

    def _run(self) -> None:
        try:
            run_next(self.ctx, self.worker, self.now)
        except Exception:  # the job stays running, its heartbeat stops, and it is retried
            log.exception("scoring job crashed in worker %s", self.worker)
