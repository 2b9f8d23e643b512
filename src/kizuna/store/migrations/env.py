"""Alembic environment: runs on the connection Kizuna hands it.

Kizuna drives Alembic from code (``kizuna db upgrade``), so the engine comes
from the workspace settings, never from an ini file with a password in it.
"""

from __future__ import annotations

from alembic import context

from kizuna.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs bare `alembic`
    raise RuntimeError("run migrations through `kizuna db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
