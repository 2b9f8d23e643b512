"""Test helpers shared across test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.ingest.importer import ImportOptions
from kizuna.ingest.problems import ImportReport
from kizuna.services.imports import ImportFiles, import_paths
from kizuna.store import tables


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def snapshot(ctx: Context) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every data table (import bookkeeping aside), to prove nothing changed."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with ctx.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name == "import_runs":
                continue
            cols = [c for c in table.c if c.name != "import_run_id"]
            out[table.name] = [
                tuple(r)
                for r in conn.execute(sa.select(*cols).order_by(*table.primary_key.columns))
            ]
    return out


def run_import(ctx: Context, kind: str, *paths: Path, **options: object) -> ImportReport:
    return import_paths(ctx, ImportFiles([(kind, list(paths))], ImportOptions(**options)))  # type: ignore[arg-type]


def add(conn: sa.Connection, table: sa.Table, **values: Any) -> int:
    """Insert one row straight into ``table`` and return its surrogate id."""
    return int(conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one())


def column(ctx: Context, table: str, name: str) -> list[Any]:
    """One column of ``table`` in insertion order, to check what an import stored."""
    t = tables.metadata.tables[table]
    with ctx.engine.connect() as conn:
        return list(conn.execute(sa.select(t.c[name]).order_by(t.c.id)).scalars())


def count(ctx: Context, table: str) -> int:
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(tables.metadata.tables[table])
            ).scalar_one()
        )


CUSTOMERS_CSV = """customer_id,name,email,birthday,gender,region,signup_at
C1,山田 太郎,taro@example.jp,1990-04-01,male,東京都,2024-01-05T10:00:00+09:00
C2,佐藤 花子,hanako@example.jp,1985-02-03,female,大阪府,2024-02-01 09:00
C3,Jane Doe,jane@example.com,,female,,2024-03-01T00:00:00Z
"""

ORDERS_CSV = """order_id,customer_id,ordered_at,channel,total_amount
O1,C1,2025-01-31T23:30:00+09:00,online,1980
O2,C2,2025-02-01T10:00:00+09:00,store,5000
"""
