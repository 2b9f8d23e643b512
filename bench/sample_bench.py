"""How fast ``kizuna sample`` writes a data set, and how much memory it takes.

    python bench/sample_bench.py                  # 1,000,000 customers
    python bench/sample_bench.py --customers 200000
    python bench/sample_bench.py --smoke          # a few thousand, for CI

Prints customers per second, order lines per second, the rows and size of
each file, and the peak resident memory of the process. The issue names no
reference speed, so the figures are reported, not judged; ``--smoke`` only
checks that the run completes and every file has rows.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kizuna.ingest.sample import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--smoke", action="store_true", help="3,000 customers, quick check")
    args = parser.parse_args(argv)
    customers = 3_000 if args.smoke else args.customers

    temp = None if args.out else Path(tempfile.mkdtemp(prefix="kizuna-sample-"))
    out = args.out or temp
    assert out is not None
    try:
        began = time.perf_counter()
        summary = generate(out, customers, seed=args.seed, chunk_size=args.chunk_size)
        seconds = time.perf_counter() - began
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines = summary.rows["order_lines"]
        print(f"customers        {customers:>14,}")
        print(f"seconds          {seconds:>14.1f}")
        print(f"customers/s      {customers / seconds:>14,.0f}")
        print(f"order lines      {lines:>14,}")
        print(f"order lines/s    {lines / seconds:>14,.0f}")
        print(f"peak RSS (MiB)   {peak_mib:>14,.0f}")
        total_bytes = 0
        print("\nfile                         rows        MiB")
        for path in sorted(out.glob("*.csv")):
            size = path.stat().st_size
            total_bytes += size
            rows = summary.rows.get(path.stem)
            shown = f"{rows:,}" if rows is not None else "-"
            print(f"{path.name:<24} {shown:>12} {size / 2**20:>10.1f}")
        print(f"{'total':<24} {'':>12} {total_bytes / 2**20:>10.1f}")
        if args.smoke and not all(summary.rows.values()):
            print("smoke: a file has no rows", file=sys.stderr)
            return 1
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
