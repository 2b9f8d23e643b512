"""The composition root: settings -> engine -> unit of work.

Nothing here runs at import time; engines are built when a command first
needs one, so importing :mod:`kizuna` never touches a database.
"""

from __future__ import annotations

import time
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


#: PostgreSQL connections kept open per process. An API process serves many
#: requests at once (FastAPI's thread pool); with SQLAlchemy's default of 5, a
#: sixth concurrent request opened a new server connection and closed it
#: again afterwards: a backend started and torn down per request, and its
#: prepared statements lost with it. 16 covers the bench's 16 connections
#: even when one worker gets them all. The ``database_pool_size`` setting
#: changes it per deployment (overflow: half of it).
PG_POOL_SIZE = 16
#: Extra connections under a burst, closed when handed back to a full pool.
#: Beyond both, a request waits for a connection (``pool_timeout``, 30 s)
#: rather than opening more: two workers stay under 50 of PostgreSQL's
#: default 100 connections.
PG_MAX_OVERFLOW = 8
#: A pooled connection idle for longer than this is pinged before use.
PG_IDLE_PING_SECONDS = 10.0
#: Connections older than this are replaced (a server-side idle timeout or a
#: proxy dropping old connections never reaches a busy pool first).
PG_RECYCLE_SECONDS = 1800


def _stamp(_dbapi_connection: Any, record: Any, *_: Any) -> None:
    record.info["kizuna_used_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection only when it sat idle in the pool, not on every checkout.

    ``pool_pre_ping`` costs a round trip per request — one in six of an earn
    call's. A connection handed back moments ago was alive then; one that sat
    idle may have been closed by a server restart or a network device, so it
    is pinged, and a dead one is replaced transparently (the pool retries the
    checkout on :class:`~sqlalchemy.exc.DisconnectionError`). A connection
    that dies in the few seconds after its last use fails its request with a
    503, which the client retries with the same Idempotency-Key; SQLAlchemy
    then invalidates it and every older pooled connection.
    """
    if time.monotonic() - record.info.get("kizuna_used_at", 0.0) <= PG_IDLE_PING_SECONDS:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # any failure of the ping means "use another connection"
        raise sa.exc.DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
    finally:
        cursor.close()


def _cache_long_queries() -> None:
    """Let psycopg cache the parsing of long queries with many parameters.

    psycopg converts each query's ``%(name)s`` placeholders to ``$n`` with a
    regular expression and caches the result, but only for queries under
    4 kB with at most 50 parameters. The earn call's single statement of
    writes (order, lines, lot, ledger entries, earned lines,
    Idempotency-Key, account: 86 parameters for a 3-line order) missed the
    cache and was re-parsed on every call, ~0.2 ms of CPU. Its shapes are
    few, and the cache is an LRU of 128 entries, so raising the limits
    bounds memory all the same. ``tests/programme/test_engine_options.py``
    fails if psycopg renames these constants.
    """
    from psycopg import _queries

    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 1000)
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 32768)


def make_engine(url: str, pool_size: int = PG_POOL_SIZE) -> sa.Engine:
    """An engine with the per-dialect settings Kizuna relies on.

    ``pool_size`` is the PostgreSQL connections kept per process; bursts may
    open half as many again (:data:`PG_MAX_OVERFLOW` at the default).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", register_sqlite_functions)
        return engine
    if url.startswith("postgresql"):
        _cache_long_queries()
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=PG_MAX_OVERFLOW if pool_size == PG_POOL_SIZE else max(1, pool_size // 2),
            pool_recycle=PG_RECYCLE_SECONDS,
            pool_use_lifo=True,
            connect_args={"options": "-c timezone=UTC"},
        )
        event.listen(engine, "connect", _stamp)
        event.listen(engine, "checkin", _stamp)
        event.listen(engine, "checkout", _ping_if_idle)
        return engine
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
            self._engine = make_engine(
                self.settings.database_url, pool_size=self.settings.database_pool_size
            )
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
