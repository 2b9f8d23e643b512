"""SQL functions that must behave the same on SQLite and PostgreSQL.

Local months (and later local days) of UTC instants: PostgreSQL has time
zones built in; SQLite gets :func:`kizuna_local_month`, a Python function
registered on every connection by ``bootstrap.make_engine``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

SQLITE_LOCAL_MONTH = "kizuna_local_month"


def kizuna_local_month(utc_text: str | None, tz: str) -> str | None:
    """``YYYY-MM`` of the local month in ``tz`` of a UTC instant stored as SQLite text.

    Called once per row, so it avoids zone arithmetic where it cannot matter:
    a UTC offset is always less than a day, so on the 2nd to the 27th of a UTC
    month the local day is still in the same month.
    """
    if utc_text is None:
        return None
    if 2 <= int(utc_text[8:10]) <= 27:
        return utc_text[:7]
    moment = datetime.fromisoformat(utc_text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


def register_sqlite_functions(dbapi_connection: Any, _connection_record: Any = None) -> None:
    """Add Kizuna's SQL functions to a raw ``sqlite3`` connection.

    Has the signature of a SQLAlchemy ``connect`` event listener, so
    ``bootstrap.make_engine`` can register it for every new connection.
    """
    dbapi_connection.create_function(SQLITE_LOCAL_MONTH, 2, kizuna_local_month, deterministic=True)


def ensure_sql_functions(conn: sa.Connection) -> None:
    """Make :func:`local_month` usable on ``conn`` whatever engine built it."""
    if conn.dialect.name == "sqlite":
        register_sqlite_functions(conn.connection.driver_connection)


def local_month(instant: sa.ColumnElement[Any], dialect: str, tz: str) -> sa.ColumnElement[str]:
    """SQL for the ``YYYY-MM`` local month in ``tz`` of a :class:`UTCDateTime` column.

    On SQLite the connection needs :func:`ensure_sql_functions` first.
    """
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone(tz, instant), "YYYY-MM", type_=sa.String)
    if dialect == "sqlite":
        return sa.func.kizuna_local_month(sa.type_coerce(instant, sa.String), tz, type_=sa.String)
    raise NotImplementedError(f"local months are not implemented for {dialect}")
