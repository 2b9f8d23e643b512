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


def test_the_ledger_window_index_built_beforehand_is_left_as_it_is(workspace: Context) -> None:
    """A large deployment builds 0022's index itself (``CREATE INDEX CONCURRENTLY``
    on PostgreSQL, so the ledger keeps taking writes); the upgrade then goes through."""
    schema.downgrade(workspace.engine, "0021")
    with workspace.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE INDEX ix_ledger_entries_customer_id_at ON ledger_entries (customer_id, at)"
        )
    schema.upgrade(workspace.engine)
    assert schema.current_revision(workspace.engine) == schema.head_revision()
    indexes = sa.inspect(workspace.engine).get_indexes("ledger_entries")
    assert "ix_ledger_entries_customer_id_at" in {i["name"] for i in indexes}
