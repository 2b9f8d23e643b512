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
old rows or erasure changes it, and the first reader after the change recomputes and stores the
new figures; until then every reader gets the stored ones.

Documents are JSON text (``NaN`` kept, so a figure reads back bit for bit);
:func:`frame_doc` / :func:`doc_frame` carry pandas frames.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

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
    row = conn.execute(
        sa.select(_a.fingerprint, _a.doc).where(_a.run_id == run_id, _a.key == key)
    ).first()
    return None if row is None else (row.fingerprint, json.loads(row.doc))


def write(engine: sa.Engine, run_id: int, key: str, doc: Any, fp: str = "") -> None:
    """Store (or replace) one artefact; a concurrent writer of the same row wins quietly."""
    text = dumps(doc)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(run_artefacts).where(_a.run_id == run_id, _a.key == key))
            conn.execute(
                sa.insert(run_artefacts).values(
                    run_id=run_id, key=key, fingerprint=fp, created_at=datetime.now(UTC), doc=text
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


def for_data(
    ctx: Context, key: str, tables: tuple[str, ...], make: Callable[[], Any], extra: str = ""
) -> Any:
    """The workspace-level artefact ``key``, recomputed when ``tables`` changed.

    ``extra`` joins the fingerprint: e.g. the day, for a figure that also
    depends on the date it is computed on.
    """
    with ctx.engine.connect() as conn:
        fp = fingerprint(conn, tables) + (f";{extra}" if extra else "")
        found = read(conn, WORKSPACE, key)
    if found is not None and found[0] == fp:
        return found[1]
    doc = make()
    write(ctx.engine, WORKSPACE, key, doc, fp)
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
    import time

    # Importing them registers the built-in artefacts.
    from kizuna.services import dashboard_figures, insights  # noqa: F401

    timings: dict[str, float] = {}
    for key, fn in PRECOMPUTE.items():
        if progress:
            progress("dashboard", key)
        started = time.perf_counter()
        try:
            fn(ctx, run, data)
        except Exception:  # one page's bug must not lose the others' figures
            log.exception("precomputing the dashboard artefact %s failed", key)
        timings[key] = time.perf_counter() - started
    return timings
