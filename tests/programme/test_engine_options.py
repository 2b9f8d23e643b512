"""The PostgreSQL engine options the earn path's speed relies on, and what they keep.

No ``pool_pre_ping`` (a round trip per request): a pooled connection is
pinged only after sitting idle, and a dead one is then replaced without the
caller noticing. Real PostgreSQL, real terminated server connections.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from psycopg import _queries

from kizuna import bootstrap
from kizuna.bootstrap import Context, make_engine
from kizuna.config import load_settings

PID = sa.text("SELECT pg_backend_pid()")
NEVER = "postgresql+psycopg://u:p@127.0.0.1:1/never_connected"


def _terminate(url: str, pid: int) -> None:
    """Kill one server connection from outside, as a server restart or a proxy would."""
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def _pg(workspace: Context) -> str:
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL engine options")
    return workspace.settings.database_url


def test_the_postgres_engine_keeps_enough_connections_and_does_not_ping_every_checkout(
    tmp_path: Path,
) -> None:
    engine = make_engine(NEVER)
    try:
        pool = engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert not pool._pre_ping  # one round trip per request saved
        # 16 kept: the bench's 16 concurrent requests opened and closed new
        # server connections with SQLAlchemy's default of 5. Bounded, so two
        # workers under a burst stay well inside PostgreSQL's 100 connections.
        assert pool.size() >= 16 and pool.size() + pool._max_overflow <= 25
    finally:
        engine.dispose()
    # A deployment with many processes turns it down with `database_pool_size`.
    overrides = {"database_url": NEVER, "database_pool_size": 4}
    small = Context(load_settings(tmp_path, env={}, overrides=overrides))
    try:
        pool = small.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.size() == 4 and pool._max_overflow == 2
    finally:
        small.dispose()
    # psycopg caches the parsing of the earn call's statement of writes (86
    # parameters for a 3-line order) only with its limits raised; this fails
    # if psycopg renames them, rather than silently parsing every call again.
    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= 1000
    assert _queries.MAX_CACHED_STATEMENT_LENGTH >= 32768


def test_an_idle_connection_that_died_is_replaced_without_an_error(
    workspace: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _pg(workspace)
    engine = workspace.engine
    with engine.connect() as conn:
        first = conn.execute(PID).scalar_one()
    _terminate(url, first)
    # Every pooled connection now counts as idle: the checkout pings it.
    monkeypatch.setattr(bootstrap, "PG_IDLE_PING_SECONDS", -1.0)
    with engine.connect() as conn:
        second = conn.execute(PID).scalar_one()
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert second != first


def test_a_connection_that_died_just_after_use_fails_once_then_the_pool_recovers(
    workspace: Context,
) -> None:
    """The trade-off documented in ``bootstrap._ping_if_idle``: within the idle
    window there is no ping, so that one request fails (the API answers 503 and
    the client retries with its Idempotency-Key); the pool then drops the dead
    connection and the retry works."""
    url = _pg(workspace)
    engine = workspace.engine
    with engine.connect() as conn:
        first = conn.execute(PID).scalar_one()
    _terminate(url, first)
    with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    with engine.connect() as conn:
        assert conn.execute(PID).scalar_one() != first
