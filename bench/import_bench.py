"""Import benchmark: order lines from CSV into SQLite and PostgreSQL.

Prints rows/s of ``kizuna import order_lines`` (validation, reference
resolution and upsert on) and the ratio to the database's own bulk load of
the same CSV in the same run: the ``sqlite3`` shell's ``.import`` and
PostgreSQL's ``COPY``, each into a table of the same columns with the same
unique key and indexes. Goal: ratio >= 0.5 on both.

    python bench/import_bench.py --lines 1000000
    python bench/import_bench.py --smoke          # tiny, for CI

PostgreSQL runs when ``KIZUNA_BENCH_POSTGRES_URL`` or ``KIZUNA_TEST_POSTGRES_URL``
is set.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.ingest.importer import ImportOptions
from kizuna.services.imports import ImportFiles, import_paths
from kizuna.services.workspace import init_workspace

LINES_PER_ORDER = 4


def write_inputs(folder: Path, lines: int, seed: int = 1) -> dict[str, Path]:
    """Customers, products and orders to refer to, and the order-lines CSV to time."""
    rng = np.random.default_rng(seed)
    orders = max(1, lines // LINES_PER_ORDER)
    customers = max(1, orders // 5)
    products = 500
    paths = {k: folder / f"{k}.csv" for k in ("customers", "products", "orders", "order_lines")}
    with paths["customers"].open("w") as fh:
        fh.write("customer_id,name\n")
        fh.writelines(f"C{i:08d},Customer {i}\n" for i in range(customers))
    with paths["products"].open("w") as fh:
        fh.write("product_id,name,price\n")
        fh.writelines(f"P{i:05d},Product {i},{100 + i}\n" for i in range(products))
    cust = rng.integers(0, customers, orders)
    with paths["orders"].open("w") as fh:
        fh.write("order_id,customer_id,ordered_at,total_amount\n")
        fh.writelines(
            f"O{i:09d},C{c:08d},2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+09:00,1000\n"
            for i, c in enumerate(cust)
        )
    prod = rng.integers(0, products, lines)
    qty = rng.integers(1, 5, lines)
    price = rng.integers(100, 20000, lines)
    with paths["order_lines"].open("w") as fh:
        fh.write("order_id,line_no,product_id,quantity,unit_price,amount\n")
        chunk = []
        for i in range(lines):
            o, n = divmod(i, LINES_PER_ORDER)
            if o >= orders:
                o, n = orders - 1, n + LINES_PER_ORDER * (i // LINES_PER_ORDER - orders + 1)
            chunk.append(
                f"O{o:09d},{n + 1},P{prod[i]:05d},{qty[i]},{price[i]},{qty[i] * price[i]}\n"
            )
            if len(chunk) >= 100_000:
                fh.writelines(chunk)
                chunk = []
        fh.writelines(chunk)
    return paths


NATIVE_DDL = """CREATE TABLE native_lines (
    order_id VARCHAR(128) NOT NULL, line_no INTEGER NOT NULL, product_id VARCHAR(128),
    quantity INTEGER NOT NULL, unit_price BIGINT NOT NULL, amount BIGINT NOT NULL,
    UNIQUE (order_id, line_no))"""
NATIVE_INDEX = "CREATE INDEX ix_native_lines_product ON native_lines (product_id)"


def prepare(ctx: Context, paths: dict[str, Path]) -> None:
    files = [(k, [paths[k]]) for k in ("customers", "products", "orders")]
    import_paths(ctx, ImportFiles(files))


def time_kizuna(ctx: Context, path: Path) -> float:
    started = time.perf_counter()
    report = import_paths(ctx, ImportFiles([("order_lines", [path])], ImportOptions()))
    elapsed = time.perf_counter() - started
    assert report.committed and report.stats["order_lines"].inserted > 0, report.summary_line()
    return elapsed


def time_sqlite_native(db: Path, path: Path) -> float:
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        raise SystemExit("the sqlite3 shell is needed for the reference (apt install sqlite3)")
    script = f"{NATIVE_DDL};\n{NATIVE_INDEX};\n"
    subprocess.run([sqlite3, str(db)], input=script, text=True, check=True)
    started = time.perf_counter()
    subprocess.run(
        [sqlite3, str(db)],
        check=True,
        text=True,
        input=f"PRAGMA synchronous=NORMAL;\n.import --csv --skip 1 {path} native_lines\n",
    )
    return time.perf_counter() - started


def time_postgres_native(url: str, path: Path) -> float:
    import psycopg

    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS native_lines")
        conn.execute(NATIVE_DDL)
        conn.execute(NATIVE_INDEX)
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY native_lines FROM STDIN (FORMAT csv, HEADER)") as copy,
            path.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE native_lines")
        conn.commit()
    return elapsed


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def report(name: str, lines: int, ours: float, native: float) -> float:
    ratio = native / ours
    print(
        f"{name:<11} kizuna import {lines / ours:>12,.0f} rows/s ({ours:6.2f} s)   "
        f"native {lines / native:>12,.0f} rows/s ({native:6.2f} s)   ratio {ratio:.2f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run that only proves the script works"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KIZUNA_BENCH_POSTGRES_URL")
        or os.environ.get("KIZUNA_TEST_POSTGRES_URL"),
    )
    args = parser.parse_args()
    lines = 2_000 if args.smoke else args.lines
    print(
        f"import benchmark: {lines:,} order lines; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_inputs(folder, lines)
        size = paths["order_lines"].stat().st_size
        print(f"input {size / 1e6:.1f} MB")
        os.environ.pop("KIZUNA_DATABASE_URL", None)

        ctx = init_workspace(folder / "sqlite-ws")
        prepare(ctx, paths)
        native = time_sqlite_native(folder / "native.sqlite", paths["order_lines"])
        ours = time_kizuna(ctx, paths["order_lines"])
        ratios = {"sqlite": report("SQLite", lines, ours, native)}
        ctx.dispose()

        if args.postgres_url:
            reset_postgres(args.postgres_url)
            ctx = init_workspace(folder / "pg-ws", database_url=args.postgres_url)
            prepare(ctx, paths)
            native = time_postgres_native(args.postgres_url, paths["order_lines"])
            ours = time_kizuna(ctx, paths["order_lines"])
            ratios["postgresql"] = report("PostgreSQL", lines, ours, native)
            ctx.dispose()
        else:
            print("PostgreSQL  skipped: set KIZUNA_BENCH_POSTGRES_URL to include it")
    if not args.smoke:
        missed = [k for k, r in ratios.items() if r < 0.5]
        print("goal (ratio >= 0.5):", "met" if not missed else f"missed on {', '.join(missed)}")


if __name__ == "__main__":
    sys.exit(main())
