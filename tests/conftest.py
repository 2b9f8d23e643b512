"""Shared fixtures: one workspace fixture parametrised over SQLite and PostgreSQL.

PostgreSQL cases run when ``KIZUNA_TEST_POSTGRES_URL`` is set (CI always sets
it) and skip with a visible reason otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.services.workspace import init_workspace


def _per_worker(url: str) -> str:
    """Under pytest-xdist each worker gets its own database (``<name>_gw0``, ...),
    created on first use, so parallel workers never reset each other's schema.
    The environment variable is rewritten too: servers and CLIs the tests start
    as subprocesses read it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker:
        return url
    target = sa.engine.make_url(url)
    return target.set(database=f"{target.database}_{worker}").render_as_string(hide_password=False)


POSTGRES_URL = _per_worker(os.environ.get("KIZUNA_TEST_POSTGRES_URL", ""))
if POSTGRES_URL:
    os.environ["KIZUNA_TEST_POSTGRES_URL"] = POSTGRES_URL
REQUIRE_POSTGRES = os.environ.get("KIZUNA_TEST_REQUIRE_POSTGRES") == "1"


def ensure_postgres_database(url: str) -> None:
    """Create the database ``url`` names when it does not exist yet (CI starts with one)."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).first()
            if found is None:
                # An identifier cannot be a bound parameter; the name is the test's own.
                conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    finally:
        admin.dispose()


def _reset_postgres(url: str) -> None:
    ensure_postgres_database(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("KIZUNA_TEST_REQUIRE_POSTGRES=1 but KIZUNA_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL case: set KIZUNA_TEST_POSTGRES_URL to run it")
    return str(request.param)


@pytest.fixture
def workspace(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A fresh, migrated workspace on the backend under test."""
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    ws = tmp_path / "ws"
    if backend == "postgresql":
        _reset_postgres(POSTGRES_URL)
        ctx = init_workspace(ws, database_url=POSTGRES_URL)
    else:
        ctx = init_workspace(ws)
    yield ctx
    ctx.dispose()


@pytest.fixture
def sqlite_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A fresh SQLite workspace, for tests about the embedded default only."""
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    ctx = init_workspace(tmp_path / "ws")
    yield ctx
    ctx.dispose()
