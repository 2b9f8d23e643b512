"""Set-based integrity checks for references kept without database FKs."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kizuna.store.tables import SOFT_REFERENCES, metadata


@dataclass(frozen=True)
class Orphans:
    """Rows of ``table`` whose ``column`` names a missing ``target`` row."""

    table: str
    column: str
    target: str
    count: int


def check_references(conn: sa.Connection) -> list[Orphans]:
    """One anti-join per soft reference; an empty result means every reference resolves."""
    found = []
    for table_name, column, target_name in SOFT_REFERENCES:
        table, target = metadata.tables[table_name], metadata.tables[target_name]
        missing = (
            sa.select(sa.func.count())
            .select_from(table.outerjoin(target, table.c[column] == target.c.id))
            .where(table.c[column].is_not(None), target.c.id.is_(None))
        )
        count = int(conn.execute(missing).scalar_one())
        if count:
            found.append(Orphans(table_name, column, target_name, count))
    return found
