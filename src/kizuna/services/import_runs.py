"""Past import runs, as the dashboard's Data page lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from kizuna.store import tables as t


@dataclass(frozen=True)
class ImportRun:
    """One past import run as recorded in ``import_runs``."""

    id: int
    kind: str
    files: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None
    status: str
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rows_rejected: int


def recent_import_runs(engine: sa.Engine, limit: int = 100) -> list[ImportRun]:
    """The newest ``limit`` import runs, newest first."""
    r = t.import_runs
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
        )
        return [
            ImportRun(
                int(x.id),
                x.kind,
                tuple(str(f) for f in (x.files or ())),
                x.started_at,
                x.finished_at,
                x.status,
                int(x.rows_read),
                int(x.rows_inserted),
                int(x.rows_updated),
                int(x.rows_unchanged),
                int(x.rows_rejected),
            )
            for x in rows
        ]
