"""Reading query results into Arrow, fast, on SQLite and PostgreSQL.

Analytics extracts and the importer's reference maps read millions of rows;
SQLAlchemy ``Row`` objects would cost more than the queries. PostgreSQL
streams ``COPY (SELECT ...) TO STDOUT`` as CSV into Arrow's reader; SQLite
reads a raw cursor in batches, column by column.
"""

from __future__ import annotations

import io
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

BATCH_ROWS = 200_000


def select_to_arrow(
    conn: sa.Connection, query: sa.Select[Any], names: list[str], types: list[pa.DataType]
) -> pa.Table:
    """The rows of ``query`` as an Arrow table with the given column names and types."""
    if conn.dialect.name == "postgresql":
        return _copy_to_arrow(conn, query, names, types)
    return _cursor_to_arrow(conn, query, names, types)


def _cursor_to_arrow(
    conn: sa.Connection, query: sa.Select[Any], names: list[str], types: list[pa.DataType]
) -> pa.Table:
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    batches: list[pa.RecordBatch] = []
    try:
        # Raw cursor: SQLAlchemy Row objects would cost more than the query.
        cursor.execute(compiled.string)
        while rows := cursor.fetchmany(BATCH_ROWS):
            # Column by column with itemgetter: several times faster than zip(*rows).
            batches.append(
                pa.record_batch(
                    [pa.array(list(map(itemgetter(i), rows)), typ) for i, typ in enumerate(types)],
                    names=names,
                )
            )
    finally:
        cursor.close()
    schema = pa.schema(list(zip(names, types, strict=True)))
    return pa.Table.from_batches(batches, schema=schema)


def _copy_to_arrow(
    conn: sa.Connection, query: sa.Select[Any], names: list[str], types: list[pa.DataType]
) -> pa.Table:
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    buf = io.BytesIO()
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            buf.write(block)
    if buf.tell() == 0:
        return pa.table({n: pa.array([], typ) for n, typ in zip(names, types, strict=True)})
    buf.seek(0)
    return pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(names, types, strict=True)),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
