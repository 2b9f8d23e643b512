"""Bulk upserts: the fast path every import takes.

Rows arrive as a typed Arrow table whose columns are table columns. SQLite
gets one prepared ``INSERT .. ON CONFLICT DO UPDATE`` run by ``executemany``;
PostgreSQL gets ``COPY`` into a temporary table and one set-based
``INSERT .. SELECT .. ON CONFLICT``. Statements are built with SQLAlchemy
constructs (never by pasting values into SQL), and an update only happens
when a value really changed, so importing the same file twice writes nothing.
"""

from __future__ import annotations

import io

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.store.arrow_io import select_to_arrow

#: Columns never compared or overwritten on conflict.
_BOOKKEEPING = {"import_run_id"}


def _upsert(
    insert: sqlite.Insert | postgresql.Insert, table: sa.Table, columns: list[str], key: list[str]
) -> sa.sql.expression.Insert:
    update_cols = [c for c in columns if c not in key and c not in _BOOKKEEPING]
    if not update_cols:
        return insert.on_conflict_do_nothing(index_elements=key)
    changed = sa.or_(*(table.c[c].is_distinct_from(insert.excluded[c]) for c in update_cols))
    assignments = {c: insert.excluded[c] for c in update_cols}
    if "import_run_id" in columns:
        assignments["import_run_id"] = insert.excluded["import_run_id"]
    return insert.on_conflict_do_update(index_elements=key, set_=assignments, where=changed)


def _sqlite_values(col: pa.ChunkedArray | pa.Array) -> list[object]:
    """Python values in the text forms SQLAlchemy itself stores on SQLite."""
    typ = col.type
    if pa.types.is_timestamp(typ):
        col = pc.strftime(
            pc.cast(col, pa.timestamp("us", tz="UTC")), format="%Y-%m-%d %H:%M:%S"
        )  # Arrow's %S carries the microseconds
    elif pa.types.is_date(typ):
        col = pc.strftime(col, format="%Y-%m-%d")
    elif pa.types.is_boolean(typ):
        col = pc.cast(col, pa.int8())
    return col.to_pylist()  # type: ignore[no-any-return]


def _upsert_sqlite(conn: sa.Connection, table: sa.Table, data: pa.Table, key: list[str]) -> int:
    columns = data.column_names
    insert = sqlite.insert(table).values({c: sa.bindparam(c) for c in columns})
    stmt = _upsert(insert, table, columns, key)
    compiled = stmt.compile(dialect=conn.dialect)
    order = compiled.positiontup or []
    position = {name: i for i, name in enumerate(columns)}
    values = [_sqlite_values(data.column(i)) for i in range(len(columns))]
    rows = list(zip(*(values[position[name]] for name in order), strict=True))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(compiled.string, rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _pg_csv(data: pa.Table) -> bytes:
    """The table as CSV text PostgreSQL's COPY reads: empty unquoted field is NULL."""
    arrays = []
    for col in data.columns:
        if pa.types.is_timestamp(col.type):
            text = pc.strftime(
                pc.cast(col, pa.timestamp("us", tz="UTC")), format="%Y-%m-%d %H:%M:%S"
            )
            col = pc.binary_join_element_wise(text, pa.scalar("+00"), "")
        arrays.append(col)
    buf = io.BytesIO()
    pacsv.write_csv(
        pa.table(arrays, names=data.column_names),
        buf,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    return buf.getvalue()


def _copy_into(conn: sa.Connection, table_name: str, columns: list[str], data: pa.Table) -> None:
    quote = conn.dialect.identifier_preparer.quote
    copy_sql = (
        f"COPY {quote(table_name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN (FORMAT csv)"
    )
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[union-attr]
        copy.write(_pg_csv(data))


def _upsert_postgres(
    conn: sa.Connection, table: sa.Table, data: pa.Table, key: list[str], optimistic: bool = True
) -> int:
    columns = data.column_names
    if optimistic:
        # Most loads bring new rows: try COPY straight into the table. If a
        # key already exists, the unique index stops the COPY, the savepoint
        # undoes it, and the set-based upsert below takes over.
        savepoint = conn.begin_nested()
        try:
            _copy_into(conn, table.name, columns, data)
        except psycopg.errors.UniqueViolation:
            savepoint.rollback()
        else:
            savepoint.commit()
            return data.num_rows
    staging = sa.Table(
        f"kizuna_stage_{table.name}",
        sa.MetaData(),
        *(sa.Column(c, table.c[c].type) for c in columns),
        prefixes=["TEMPORARY"],
    )
    staging.create(conn)
    try:
        _copy_into(conn, staging.name, columns, data)
        insert = postgresql.insert(table).from_select(columns, sa.select(*staging.c))
        # Executed as compiled text: SQLAlchemy reports rowcount -1 for
        # INSERT .. SELECT constructs on psycopg, and we need the real count.
        compiled = _upsert(insert, table, columns, key).compile(dialect=conn.dialect)
        result = conn.exec_driver_sql(compiled.string)
        return int(result.rowcount)
    finally:
        staging.drop(conn)


def upsert(conn: sa.Connection, table: sa.Table, data: pa.Table, key: list[str]) -> int:
    """Insert new rows and update changed ones; returns how many rows were written."""
    if data.num_rows == 0:
        return 0
    if conn.dialect.name == "sqlite":
        return _upsert_sqlite(conn, table, data, key)
    if conn.dialect.name == "postgresql":
        return _upsert_postgres(conn, table, data, key)
    raise NotImplementedError(f"bulk upsert is not implemented for {conn.dialect.name}")


def count_rows(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def key_map(conn: sa.Connection, table: sa.Table, extra: str | None = None) -> pa.Table:
    """``external_id -> id`` (and one more column) of a table, for resolving references."""
    cols = [table.c.external_id, table.c.id] + ([table.c[extra]] if extra else [])
    names = ["external_id", "id"] + ([extra] if extra else [])
    types = [pa.string() if n == "external_id" else pa.int64() for n in names]
    return select_to_arrow(conn, sa.select(*cols), names, types)
