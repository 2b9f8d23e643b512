"""Dashboard figures computed once, stored as one row, read by every process.

On a million customers the analytics pages cost seconds each to compute
(KPIs by month, the cohort heatmap, lifecycle snapshots, personas, key
drivers, the journey map, even the overview's counts and revenue by month).
A scoring run never changes once written, so whatever a page derives from it
is computed at the end of the run (:func:`precompute`, called by
:func:`kizuna.services.scoring.score`) and stored in ``run_artefacts`` keyed
by ``(run_id, key)``: every API and dashboard process reads the same row, a
restart costs nothing, and no answer can be stale.

Some pages follow the *data* rather than a run (the overview, KPIs, cohorts
and lifecycle reflect the latest import, as ``kizuna kpi`` does). Their rows
live under run 0 with a *fingerprint* of the data: the smallest and largest
ids of every table they read plus the newest import run and erasure, one
indexed statement. Any insert (import, API ingestion, an earn), purge of
old rows or erasure changes it. Outside the dashboard (CLI, API, a scoring
run) the first reader after a change recomputes and stores the new figures.

A dashboard page instead serves the stored figure at once and has it
recomputed in the background (stale-while-revalidate, :func:`for_data`):
recomputing one took 10-50 s at a million customers, and a shop whose till
earns points every few seconds changes the fingerprint all the time. One
process of the whole deployment recomputes a figure, the one that wins its
lease row in ``figure_refresh`` (a crashed one's lease lapses), and at most
once per ``dashboard_refresh_seconds``, so continuous writes cost a bounded
amount of work; the page says how old the figure is. See
:mod:`kizuna.services.figure_refresh`.

Documents are JSON text (``NaN`` kept, so a figure reads back bit for bit);
:func:`frame_doc` / :func:`doc_frame` carry pandas frames.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.services import figure_refresh as fr
from kizuna.store import tables as t
from kizuna.store.web_tables import run_artefacts

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.bootstrap import Context
    from kizuna.services.scoring import RunInfo

log = logging.getLogger(__name__)

#: ``run_id`` of the workspace-level rows guarded by a data fingerprint.
WORKSPACE = 0
_a = run_artefacts.c


# --- JSON documents --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """NumPy scalars and dates as JSON-able Python values (``json.dumps`` default)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a dashboard artefact")


def dumps(doc: Any) -> str:
    return json.dumps(doc, default=_plain, ensure_ascii=False, separators=(",", ":"))


def frame_doc(frame: pd.DataFrame) -> dict[str, Any]:
    """A frame as index, columns and rows (column labels keep their type)."""
    return {
        "index": [_plain(i) if hasattr(i, "item") else i for i in frame.index],
        "columns": [_plain(c) if hasattr(c, "item") else c for c in frame.columns],
        "data": frame.to_numpy(dtype=object).tolist(),
    }


def doc_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """The frame :func:`frame_doc` stored (numeric columns get their dtype back)."""
    import pandas as pd

    frame = pd.DataFrame(doc["data"], index=doc["index"], columns=doc["columns"])
    return frame.infer_objects()


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


# --- the fingerprint of the data ---------------------------------------------------------


#: The erasure audit: an erasure anonymises rows in place (no id moves), and
#: a stored figure holding words of comments must not outlive it.
ERASURES = "privacy_erasures"


def fingerprint(conn: sa.Connection, tables: tuple[str, ...]) -> str:
    """Smallest and largest id of each of ``tables``, the newest import run and erasure.

    Imports upsert in place, but each writes an ``import_runs`` row; every
    other writer of these tables only inserts, retention purges the oldest
    rows (the smallest id moves) and erasure anonymises in place but writes
    its audit row. Each part is a primary-key lookup.
    """
    parts = []
    for name in (*tables, "import_runs", ERASURES):
        table = t.metadata.tables[name]
        parts += [
            sa.select(sa.func.min(table.c.id)).scalar_subquery(),
            sa.select(sa.func.max(table.c.id)).scalar_subquery(),
        ]
    row = conn.execute(sa.select(*parts)).one()
    return ",".join("" if v is None else str(v) for v in row)


# --- reading and writing ----------------------------------------------------------------


def erasure_mark(conn: sa.Connection) -> str:
    """The newest erasure: a run's figures quoting comments are rebuilt after one."""
    table = t.metadata.tables[ERASURES]
    return str(conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or "")


def read(conn: sa.Connection, run_id: int, key: str) -> tuple[str, Any] | None:
    """(fingerprint, document) of a stored artefact, or None."""
    found = read_stored(conn, run_id, key)
    return None if found is None else (found.fingerprint, found.doc)


@dataclass(frozen=True)
class Stored:
    """One stored artefact: what it was computed on, when, and the document."""

    fingerprint: str
    created_at: datetime
    doc: Any


def read_stored(conn: sa.Connection, run_id: int, key: str) -> Stored | None:
    row = conn.execute(
        sa.select(_a.fingerprint, _a.created_at, _a.doc).where(_a.run_id == run_id, _a.key == key)
    ).first()
    return None if row is None else Stored(row.fingerprint, row.created_at, json.loads(row.doc))


def write(
    engine: sa.Engine,
    run_id: int,
    key: str,
    doc: Any,
    fp: str = "",
    created_at: datetime | None = None,
) -> None:
    """Store (or replace) one artefact; a concurrent writer of the same row wins quietly.

    ``created_at`` is when the data was read (the page's "as of"), by
    default now.
    """
    text = dumps(doc)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(run_artefacts).where(_a.run_id == run_id, _a.key == key))
            conn.execute(
                sa.insert(run_artefacts).values(
                    run_id=run_id,
                    key=key,
                    fingerprint=fp,
                    created_at=created_at or _now(),
                    doc=text,
                )
            )
    except sa.exc.IntegrityError:  # another process stored the same figures first
        pass


def for_run(ctx: Context, run: RunInfo, key: str, make: Callable[[], Any]) -> Any:
    """The artefact ``key`` of ``run``: stored at the end of the run, else made once now."""
    with ctx.engine.connect() as conn:
        found = read(conn, run.id, key)
    if found is not None:
        return found[1]
    doc = make()
    write(ctx.engine, run.id, key, doc)
    return json.loads(dumps(doc))


def _now() -> datetime:
    return datetime.now(UTC)


def _fingerprint(conn: sa.Connection, tables: tuple[str, ...], extra: str) -> str:
    """The data's fingerprint with ``extra`` (see :func:`for_data`) joined to it."""
    return fingerprint(conn, tables) + (f";{extra}" if extra else "")


def _make_and_store(
    ctx: Context, key: str, tables: tuple[str, ...], make: Callable[[], Any], extra: str
) -> Any:
    """Read the fingerprint, make the figure, store both with the time of the read."""
    started = _now()
    with ctx.engine.connect() as conn:
        fp = _fingerprint(conn, tables, extra)
    doc = make()
    write(ctx.engine, WORKSPACE, key, doc, fp, created_at=started)
    return doc


def for_data(
    ctx: Context, key: str, tables: tuple[str, ...], make: Callable[[], Any], extra: str = ""
) -> Any:
    """The workspace-level artefact ``key``, recomputed when ``tables`` changed.

    ``extra`` joins the fingerprint: e.g. the day, for a figure that also
    depends on the date it is computed on.

    On a dashboard page (:func:`figure_refresh.begin_page`) with ``dashboard_refresh_seconds``
    above 0, a stale stored figure is returned at once and recomputed in
    the background by whichever process takes its lease; only a figure
    never stored is computed here. Elsewhere (and with 0) a stale figure is
    recomputed here, as the CLI and a scoring run need the current one.
    """
    with ctx.engine.connect() as conn:
        fp = _fingerprint(conn, tables, extra)
        found = read_stored(conn, WORKSPACE, key)
    if found is not None and found.fingerprint == fp:
        fr.note(fr.FigureState(key, _now(), stale=False, updating=False))
        return found.doc
    bound = ctx.settings.dashboard_refresh_seconds
    if found is not None and fr.on_page() and bound:
        updating = fr.start(
            ctx.engine, key, bound, lambda: _make_and_store(ctx, key, tables, make, extra)
        )
        fr.note(fr.FigureState(key, found.created_at, stale=True, updating=updating))
        return found.doc
    # Computed here: hold the lease meanwhile (when free) so that no
    # process starts the same work in the background.
    holder = fr.holder()
    leased, _ = fr.acquire(ctx.engine, key, holder, None)
    try:
        started = _now()
        doc = make()
        write(ctx.engine, WORKSPACE, key, doc, fp, created_at=started)
    finally:
        if leased:
            fr.release(ctx.engine, key, holder)
    fr.note(fr.FigureState(key, started, stale=False, updating=False))
    return json.loads(dumps(doc))


# --- the registry of what a scoring run precomputes --------------------------------------

#: key -> function storing that artefact for a run (it calls for_run / for_data).
#: Its third argument is the run's extracted data (``analytics.engine.Dataset``)
#: when the scoring run passes it, else None.
Precompute = Callable[["Context", "RunInfo", Any], None]
PRECOMPUTE: dict[str, Precompute] = {}


def register(key: str, fn: Precompute) -> None:
    """Have :func:`precompute` call ``fn`` at the end of every scoring run."""
    PRECOMPUTE[key] = fn


def precompute(
    ctx: Context,
    run: RunInfo,
    progress: Callable[[str, str], None] | None = None,
    data: Any = None,
) -> dict[str, float]:
    """Compute and store every registered artefact of ``run``; seconds per artefact.

    A failing artefact is logged and skipped: its page computes it on first
    view instead, and the run itself is already complete.
    """
    # Importing them registers the built-in artefacts.
    from kizuna.services import dashboard_figures, insights  # noqa: F401

    timings: dict[str, float] = {}
    # A run stores the current figures, even when started from a dashboard page.
    with fr.off_page():
        _precompute_all(ctx, run, progress, data, timings)
    return timings


def _precompute_all(
    ctx: Context,
    run: RunInfo,
    progress: Callable[[str, str], None] | None,
    data: Any,
    timings: dict[str, float],
) -> None:
    for key, fn in PRECOMPUTE.items():
        if progress:
            progress("dashboard", key)
        started = time.perf_counter()
        try:
            fn(ctx, run, data)
        except Exception:  # one page's bug must not lose the others' figures
            log.exception("precomputing the dashboard artefact %s failed", key)
        timings[key] = time.perf_counter() - started
