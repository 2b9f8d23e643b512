"""Prometheus metrics: request latency in this process, queue and send state from the database.

The request histogram lives in this process (or, with several uvicorn
workers, in ``PROMETHEUS_MULTIPROC_DIR`` shared by them). Everything about
journeys, sends, workers and scoring is read from the database when
Prometheus scrapes, by :class:`DatabaseCollector`: any API process answers
for the whole deployment, and no module that does the work has to count it.
Scrape results are cached for :data:`CACHE_SECONDS` so that many scrapers
(or a dashboard refreshing) cost at most one set of queries per interval.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "kizuna_http_request_duration_seconds",
    "HTTP request latency by route template, method and status (ledger calls are the "
    "/v1/members/... and /v1/orders... routes).",
    ("route", "method", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
CACHE_SECONDS = 10.0
#: A worker whose heartbeat is older than this no longer counts as alive.
WORKER_STALE = timedelta(seconds=120)


def queue_state(engine: sa.Engine, now: datetime | None = None) -> dict[str, Any]:
    """The journey queue as the dashboard and the metrics show it."""
    from kizuna.store import automation_tables as at
    from kizuna.store import operations_tables as ops

    now = now or datetime.now(UTC)
    r, j, s, h = at.journey_runs.c, at.journeys.c, at.sends.c, ops.worker_heartbeats.c
    runs_active_journeys = at.journey_runs.join(at.journeys, j.id == r.journey_id)
    due_filter = sa.and_(r.status == "active", r.due_at <= now, j.status == "active")
    with engine.connect() as conn:
        runs: dict[str, int] = {
            str(k): int(v)
            for k, v in conn.execute(sa.select(r.status, sa.func.count()).group_by(r.status))
        }
        due, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(r.due_at))
            .select_from(runs_active_journeys)
            .where(due_filter)
        ).one()
        waiting = conn.execute(
            sa.select(sa.func.count())
            .select_from(at.journey_runs)
            .where(r.status == "active", r.due_at > now)
        ).scalar_one()
        sends = conn.execute(
            sa.select(s.action, s.status, sa.func.count()).group_by(s.action, s.status)
        ).all()
        beats = conn.execute(sa.select(h.worker_id, h.hostname, h.seen_at, h.claimed)).all()
        scoring = _latest_scoring(conn)
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return {
        "runs": runs,
        "due": int(due),
        "waiting": int(waiting),
        "lag_seconds": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        "sends": [(a, st, int(n)) for a, st, n in sends],
        "workers": [
            {
                "worker_id": b.worker_id,
                "hostname": b.hostname,
                "seen_at": b.seen_at,
                "claimed": int(b.claimed),
                "alive": now - b.seen_at <= WORKER_STALE,
            }
            for b in beats
        ],
        "scoring": scoring,
    }


def _latest_scoring(conn: sa.Connection) -> dict[str, Any]:
    from kizuna.store.scoring_tables import scoring_runs as sr

    count = conn.execute(sa.select(sa.func.count()).select_from(sr)).scalar_one()
    latest = conn.execute(
        sa.select(sr.c.version, sr.c.timings, sr.c.customers)
        .where(sr.c.status == "complete")
        .order_by(sr.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return {"runs": int(count), "timings": {}, "customers": 0}
    timings = {k: float(v) for k, v in (latest.timings or {}).items() if isinstance(v, int | float)}
    return {"runs": int(count), "timings": timings, "customers": int(latest.customers)}


class DatabaseCollector(Collector):
    """Journey steps, queue lag, dead letters, sends, workers and scoring, read at scrape time."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                self._cached = (time.monotonic(), self._metrics())
            yield from self._cached[1]

    def _metrics(self) -> list[Metric]:
        try:
            state = queue_state(self.engine)
        except sa.exc.SQLAlchemyError:
            up = GaugeMetricFamily("kizuna_database_up", "1 when the database answered the scrape")
            up.add_metric([], 0)
            return [up]
        up = GaugeMetricFamily("kizuna_database_up", "1 when the database answered the scrape")
        up.add_metric([], 1)
        runs = GaugeMetricFamily(
            "kizuna_journey_runs", "Journey runs by status (dead = dead letters)", labels=["status"]
        )
        for status in ("active", "completed", "exited", "dead"):
            runs.add_metric([status], state["runs"].get(status, 0))
        due = GaugeMetricFamily("kizuna_journey_steps_due", "Journey steps due now, not yet run")
        due.add_metric([], state["due"])
        waiting = GaugeMetricFamily(
            "kizuna_journey_steps_waiting", "Active runs waiting for a later due time"
        )
        waiting.add_metric([], state["waiting"])
        lag = GaugeMetricFamily(
            "kizuna_journey_queue_lag_seconds", "Age of the oldest due journey step (0: none due)"
        )
        lag.add_metric([], state["lag_seconds"])
        sends = CounterMetricFamily(
            "kizuna_sends",
            "Journey effects by action and outcome (rate() of sent = send rate)",
            labels=["action", "status"],
        )
        dead = 0
        for action, status, n in state["sends"]:
            sends.add_metric([action, status], n)
            dead += n if status == "dead" else 0
        letters = GaugeMetricFamily("kizuna_dead_letters", "Sends that failed for good")
        letters.add_metric([], dead)
        workers = GaugeMetricFamily(
            "kizuna_workers_alive", "Workers whose heartbeat is younger than two minutes"
        )
        workers.add_metric([], sum(1 for w in state["workers"] if w["alive"]))
        scoring_runs = CounterMetricFamily("kizuna_scoring_runs", "Scoring runs stored")
        scoring_runs.add_metric([], state["scoring"]["runs"])
        scoring = GaugeMetricFamily(
            "kizuna_scoring_run_duration_seconds",
            "Duration of the latest complete scoring run, by phase (total = whole run)",
            labels=["phase"],
        )
        for phase, seconds in sorted(state["scoring"]["timings"].items()):
            scoring.add_metric([phase], seconds)
        return [up, runs, due, waiting, lag, sends, letters, workers, scoring_runs, scoring]


_collectors: dict[int, DatabaseCollector] = {}


def exposition(engine: sa.Engine) -> bytes:
    """The text a Prometheus scrape receives: this process's requests + the database's state."""
    collector = _collectors.setdefault(id(engine), DatabaseCollector(engine))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        http = CollectorRegistry()
        MultiProcessCollector(http)  # type: ignore[no-untyped-call]
    else:
        http = REGISTRY
    db = CollectorRegistry(auto_describe=False)
    db.register(collector)
    return generate_latest(http) + generate_latest(db)
