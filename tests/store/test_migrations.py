"""Alembic owns the schema: the same migrations build the same tables on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kizuna.bootstrap import Context
from kizuna.store import schema
from kizuna.store.tables import metadata


def test_migrations_build_exactly_the_declared_tables(workspace: Context) -> None:
    with workspace.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert diff == [], f"tables.py and the migrations disagree: {diff}"
    assert schema.is_current(workspace.engine)


def test_downgrade_to_base_and_upgrade_again(workspace: Context) -> None:
    schema.downgrade(workspace.engine, "base")
    names = set(sa.inspect(workspace.engine).get_table_names())
    assert names <= {"alembic_version"}
    schema.upgrade(workspace.engine)
    assert set(metadata.tables) <= set(sa.inspect(workspace.engine).get_table_names())


def test_upgrade_is_idempotent(workspace: Context) -> None:
    before = schema.current_revision(workspace.engine)
    schema.upgrade(workspace.engine)
    assert schema.current_revision(workspace.engine) == before == schema.head_revision()
