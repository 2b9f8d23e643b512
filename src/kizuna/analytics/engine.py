"""Where the analytics run: an Ibis backend holding the extracted tables.

DuckDB in-process is the default; PySpark runs the very same expressions on
a cluster. The tables are extracted from the system of record once
(:mod:`kizuna.analytics.extract`) and registered with the backend, and
every analytic is an Ibis expression over them, so swapping the backend
changes where the work runs, not what it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from kizuna.analytics import extract
from kizuna.errors import ConfigError

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir

    from kizuna.bootstrap import Context

ENGINES = ("duckdb", "pyspark")

#: The tables extracted for analytics, with the function that reads each.
TABLES: dict[str, Callable[[sa.Connection, str], pa.Table]] = {
    "orders": extract.orders,
    "survey_answers": extract.survey_answers,
    "reviews": extract.reviews,
    "referrals": extract.referrals,
    "community_activity": extract.community_activity,
    "contacts": extract.contacts,
}


def connect(engine: str = "duckdb", spark: Any = None) -> ibis.BaseBackend:
    """An Ibis backend: in-process DuckDB, or PySpark on ``spark`` (a SparkSession).

    Without a session one is built the standard Spark way: the master and
    resources come from ``spark-defaults.conf``, ``PYSPARK_SUBMIT_ARGS`` or
    ``spark-submit`` (``local[*]`` when none is set). Or pass your own session.
    """
    import ibis

    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql("SET preserve_insertion_order = false")
        return con
    if engine == "pyspark":
        if spark is None:
            spark = spark_session()
        return ibis.pyspark.connect(spark)
    raise ConfigError(f"unknown analytics engine {engine!r}; use one of {', '.join(ENGINES)}")


def spark_session(master: str | None = None, app_name: str = "kizuna") -> Any:
    """A SparkSession (on ``master`` if given) with UTC session time (instants stay UTC)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if master:
        builder = builder.master(master)
    builder = (
        builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
    )
    return builder.getOrCreate()


@dataclass
class Dataset:
    """The extracted tables on one backend, as Ibis tables, and the raw Arrow."""

    con: ibis.BaseBackend
    arrow: dict[str, pa.Table] = field(default_factory=dict)
    tables: dict[str, ir.Table] = field(default_factory=dict)

    def register(self, name: str, data: pa.Table) -> ir.Table:
        """Make ``data`` a table of the backend, keeping Arrow's types and nulls."""
        self.arrow[name] = data
        if self.con.name == "pyspark":
            # Straight from Arrow: Ibis would go through pandas, where a null in
            # an integer column becomes NaN, which Spark does not treat as null.
            session = self.con._session  # type: ignore[attr-defined]
            session.createDataFrame(data).createOrReplaceTempView(f"kz_{name}")
            self.tables[name] = self.con.table(f"kz_{name}")
        else:
            self.tables[name] = self.con.create_table(f"kz_{name}", data, overwrite=True)
        return self.tables[name]

    def __getitem__(self, name: str) -> ir.Table:
        return self.tables[name]


def load(
    ctx: Context,
    con: ibis.BaseBackend | None = None,
    names: tuple[str, ...] = tuple(TABLES),
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Extract ``names`` from the workspace and register them on ``con`` (default DuckDB)."""
    data = Dataset(con if con is not None else connect())
    tz = ctx.settings.timezone
    with ctx.engine.connect() as conn:
        for name in names:
            if progress:
                progress(name)
            data.register(name, TABLES[name](conn, tz))
    return data


def from_arrow(tables: dict[str, pa.Table], con: ibis.BaseBackend | None = None) -> Dataset:
    """A dataset from Arrow tables already in hand (tests, other sources)."""
    data = Dataset(con if con is not None else connect())
    for name, table in tables.items():
        data.register(name, table)
    return data
