"""The composition root: settings -> engine -> unit of work.

Nothing here runs at import time; engines are built when a command first
needs one, so importing :mod:`kizuna` never touches a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from kizuna.config import CONFIG_FILE, Settings, load_settings
from kizuna.errors import WorkspaceError
from kizuna.store import schema
from kizuna.store.sqlfunctions import register_sqlite_functions


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (dashboard, analytics) run while an import writes;
    # foreign keys are off by default in SQLite and we rely on them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MB of page cache: bulk upserts touch several indexes at once.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    """An engine with the per-dialect settings Kizuna relies on."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", register_sqlite_functions)
        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(
            url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"}
        )
    raise WorkspaceError(
        f"unsupported database URL {sa.engine.make_url(url).render_as_string(hide_password=True)}; "
        "use sqlite:///path or postgresql+psycopg://user:pass@host/db"
    )


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


class Context:
    """Everything a command needs, built lazily from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def require_current_schema(self) -> None:
        """Refuse to work on a database that is missing or behind the code."""
        try:
            current = schema.current_revision(self.engine)
        except sa.exc.OperationalError as exc:
            raise WorkspaceError(
                f"cannot reach the database {safe_url(self.settings.database_url)}: "
                f"{exc.orig}. Check KIZUNA_DATABASE_URL or the workspace path."
            ) from exc
        head = schema.head_revision()
        if current is None:
            raise WorkspaceError(
                f"the database {safe_url(self.settings.database_url)} has no Kizuna schema; "
                "run `kizuna init` for a new workspace or `kizuna db upgrade`"
            )
        if current != head:
            raise WorkspaceError(
                f"the database schema is at revision {current} but this Kizuna needs {head}; "
                "run `kizuna db upgrade`"
            )

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def open_context(workspace: str | Path | None = None, **overrides: Any) -> Context:
    """Settings for ``workspace`` (a folder) or a database URL."""
    if isinstance(workspace, str) and "://" in workspace:
        return Context(load_settings(None, overrides={"database_url": workspace, **overrides}))
    settings = load_settings(workspace, overrides=overrides)
    if (
        settings.is_sqlite
        and not (settings.workspace / CONFIG_FILE).exists()
        and settings.sources.get("database_url") == "default"
    ):
        raise WorkspaceError(
            f"{settings.workspace} is not a Kizuna workspace (no {CONFIG_FILE}); "
            f"run `kizuna init {settings.workspace}` or pass --workspace"
        )
    return Context(settings)
