"""Who recomputes a stale dashboard figure, and what a page tells about its age.

Stale-while-revalidate for the figures that follow the data
(:func:`kizuna.services.run_artefacts.for_data`): recomputing one took
10-50 s at a million customers, and a shop whose till earns points every
few seconds changes the data all the time, so a dashboard page serves the
stored figure at once and this module has it recomputed in the background:

* **one process for the whole deployment**: the lease row of the figure in
  ``figure_refresh`` (:func:`acquire`, one conditional UPDATE); a crashed
  recomputer's lease lapses after :data:`LEASE_SECONDS`, a live one is
  renewed by a heartbeat;
* **bounded work**: at most one background recompute per figure per
  ``dashboard_refresh_seconds`` (``started_at``), unless an editor asked for
  one since (:func:`request_refresh`, ``requested_at``);
* **one at a time per process**: a single worker thread takes the queued
  recomputes in turn, so the pages the process serves keep the CPU;
* **the page says how old it is**: each request of the dashboard is marked
  (:func:`begin_page`) and records the figures it read (:func:`page_figures`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.store.web_tables import figure_refresh

log = logging.getLogger(__name__)
_f = figure_refresh.c


# --- what a dashboard page showed ----------------------------------------------------------


@dataclass(frozen=True)
class FigureState:
    """How current one figure a page shows is.

    ``as_of`` is when the data it shows was read: now for a figure whose
    data has not changed since; ``updating`` says a newer one is being
    computed (by this or another process).
    """

    key: str
    as_of: datetime
    stale: bool
    updating: bool


@dataclass
class Page:
    """One dashboard request: it may be served stale figures, and records them."""

    seen: dict[str, FigureState] = field(default_factory=dict)


#: Set per dashboard request (:func:`begin_page`); None everywhere else, where
#: :func:`for_data` recomputes a stale figure itself as it always did.
_page: ContextVar[Page | None] = ContextVar("kizuna_dashboard_page", default=None)


def begin_page() -> Page:
    """Mark the current request a dashboard page (call it in the request's own task).

    A context variable set there is copied into the worker thread a
    synchronous route runs in, and the :class:`Page` object is shared, so
    what the route's figures record reaches :func:`page_figures`.
    """
    page = Page()
    _page.set(page)
    return page


def page_figures() -> list[FigureState]:
    """The data-following figures the current page has read, oldest first."""
    page = _page.get()
    if page is None:
        return []
    return sorted(page.seen.values(), key=lambda s: s.as_of)


def note(state: FigureState) -> None:
    page = _page.get()
    if page is not None:
        page.seen[state.key] = state


def on_page() -> bool:
    """Whether the current request is a dashboard page (stale figures allowed)."""
    return _page.get() is not None


@contextmanager
def off_page() -> Iterator[None]:
    """Compute current figures even inside a page (a scoring run started from one)."""
    token = _page.set(None)
    try:
        yield
    finally:
        _page.reset(token)


# --- who recomputes a stale figure ---------------------------------------------------------

#: How long a recomputer's lease lasts; renewed every third of it while it
#: runs, so only a crashed (or frozen) process lets it lapse.
LEASE_SECONDS = 600.0

#: This process's background recomputes: the queue one worker thread runs in
#: turn, and the leases it holds (key -> holder), renewed by a heartbeat.
_jobs: deque[Callable[[], None]] = deque()
_held: dict[str, tuple[sa.Engine, str]] = {}
_cv = threading.Condition()
_running: dict[str, threading.Thread] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def holder() -> str:
    """Who takes a lease: host, process and thread (shown in ``figure_refresh.holder``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:128]


def acquire(engine: sa.Engine, key: str, holder: str, bound: int | None) -> tuple[bool, bool]:
    """Take the lease of ``key``: no live lease, and (unless ``bound`` is None) no
    recompute started within ``bound`` seconds unless one was requested since.

    Returns (taken, held by another). Only a bounded take (a background
    recompute) counts towards the bound: an inline computation (``bound``
    None: a first view, a scoring run, the CLI) holds the lease so that
    nobody starts the same work meanwhile, but the next write's recompute
    need not wait for it.

    The lease row is read first, so the common case of a page view while
    the bound holds or another process recomputes costs one indexed read
    and no write transaction; the take itself is one conditional UPDATE (on
    PostgreSQL a concurrent one waits for the row lock and re-checks the
    condition, on SQLite writers are serial), so exactly one taker wins.
    """
    now = _now()
    since = None if bound is None else now - timedelta(seconds=bound)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(_f.lease_until, _f.started_at, _f.requested_at).where(_f.key == key)
        ).first()
    if row is None:
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(figure_refresh).values(key=key))
        except sa.exc.IntegrityError:  # another process made the row first
            pass
    else:
        if row.lease_until is not None and row.lease_until > now:
            return False, True
        requested = row.requested_at is not None and (
            row.started_at is None or row.requested_at > row.started_at
        )
        recent = since is not None and row.started_at is not None and row.started_at > since
        if recent and not requested:
            return False, False
    free = sa.or_(_f.lease_until.is_(None), _f.lease_until < now)
    if since is not None:
        free = sa.and_(
            free,
            sa.or_(
                _f.started_at.is_(None),
                _f.started_at <= since,
                sa.and_(_f.requested_at.is_not(None), _f.requested_at > _f.started_at),
            ),
        )
    values: dict[str, Any] = {
        "holder": holder,
        "lease_until": now + timedelta(seconds=LEASE_SECONDS),
    }
    if since is not None:
        values["started_at"] = now
    with engine.begin() as conn:
        taken = conn.execute(
            sa.update(figure_refresh).where(_f.key == key, free).values(**values)
        ).rowcount
    return taken == 1, taken != 1


def _renew(engine: sa.Engine, key: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(figure_refresh)
            .where(_f.key == key, _f.holder == holder)
            .values(lease_until=_now() + timedelta(seconds=LEASE_SECONDS))
        )


def release(engine: sa.Engine, key: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(figure_refresh)
            .where(_f.key == key, _f.holder == holder)
            .values(lease_until=None, holder=None)
        )


def lease_of(engine: sa.Engine, key: str) -> dict[str, Any] | None:
    """The lease row of ``key`` (holder, lease_until, started_at, requested_at), or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(figure_refresh).where(_f.key == key)).first()
    return None if row is None else dict(row._mapping)


def request_refresh(engine: sa.Engine) -> int:
    """ "Refresh now": lift the once-per-``dashboard_refresh_seconds`` bound once.

    Marks every data-following figure; the next view of a stale one starts
    its recompute at once (in the background). Returns how many figures
    were marked. Costs one UPDATE, so the request returns at once.
    """
    with engine.begin() as conn:
        return conn.execute(sa.update(figure_refresh).values(requested_at=_now())).rowcount


def _recompute(engine: sa.Engine, key: str, holder_id: str, job: Callable[[], None]) -> None:
    """The background recompute of one figure, under the lease ``holder_id`` took.

    A failure is logged and the stored figure stays in place (the pages keep
    showing it with its time); the lease is released and the bound on
    recomputes still holds, so a failing figure is not retried per view.
    """
    started = time.perf_counter()
    try:
        job()
        log.info("recomputed dashboard figure %s in %.1f s", key, time.perf_counter() - started)
    except Exception:
        log.exception(
            "recomputing dashboard figure %s failed; pages keep showing the stored one", key
        )
    finally:
        try:
            release(engine, key, holder_id)
        except Exception:  # the lease lapses by itself
            log.exception("releasing the lease of dashboard figure %s failed", key)
        with _cv:
            _held.pop(key, None)
            _cv.notify_all()


def _work() -> None:
    """Run the queued recomputes one after another.

    One at a time: the pages are served by the same process, and several
    heavy computations at once (pandas, the tokeniser) would take the CPU
    and the interpreter lock from them; the figures' staleness stays bounded
    by the sum of their computations.
    """
    while True:
        with _cv:
            if not _jobs:
                _running.pop("worker", None)
                return
            job = _jobs.popleft()
        job()


def _heartbeat() -> None:
    """Renew every lease this process holds (queued or running) until none is left."""
    while True:
        with _cv:
            if not _held:
                _running.pop("heartbeat", None)
                return
            _cv.wait(LEASE_SECONDS / 3)
            held = list(_held.items())
        for key, (engine, holder_id) in held:
            try:
                _renew(engine, key, holder_id)
            except Exception:  # the lease lapses; at worst another process recomputes too
                log.exception("renewing the lease of dashboard figure %s failed", key)


def start(engine: sa.Engine, key: str, bound: int, job: Callable[[], None]) -> bool:
    """Queue ``job`` (recompute and store ``key``) in this process if it wins the lease.

    Returns whether a recompute of ``key`` is now queued or running anywhere.
    """
    holder_id = holder()
    taken, held = acquire(engine, key, holder_id, bound)
    if not taken:
        return held
    with _cv:
        _held[key] = (engine, holder_id)
        _jobs.append(lambda: _recompute(engine, key, holder_id, job))
        for name, target in (("worker", _work), ("heartbeat", _heartbeat)):
            if name not in _running:
                thread = threading.Thread(target=target, name=f"kizuna-figures-{name}", daemon=True)
                _running[name] = thread
                thread.start()
        _cv.notify_all()
    return True


def wait_background(timeout: float = 300.0) -> bool:
    """Wait for this process's background recomputes; False if some still run."""
    with _cv:
        return _cv.wait_for(lambda: not _held, timeout)
