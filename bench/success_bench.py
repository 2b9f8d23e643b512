"""Customer-success benchmark: health, intent and the monthly report on the sample.

Generates and imports ``kizuna sample --customers N`` into a fresh SQLite
workspace (not timed), then times, as of the sample's last day:

* ``kizuna health compute``: every account and B2B person scored, stored,
  touch models assigned, journey signals recorded;
* ``kizuna intent compute``: every account x topic for the week, stored,
  ``intent_surge`` events recorded;
* the monthly report: collect every section + render the HTML;
* reference, in the same run: ``analytics_queries.kpi_frame`` monthly (the
  dashboard's KPI table over the whole data set), which the report also calls.

Ratios are our time over the reference's: how many "KPI tables" each costs.

    python bench/success_bench.py --customers 100000
    python bench/success_bench.py --smoke          # 3,000 customers, for CI
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

LAST_DAY = date(2026, 10, 31)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="3,000 customers, for CI")
    args = parser.parse_args()
    n = 3_000 if args.smoke else args.customers

    from kizuna.ingest.sample import generate
    from kizuna.reports.data import collect
    from kizuna.reports.monthly import render_html
    from kizuna.services import analytics_queries, health, intent
    from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
    from kizuna.services.workspace import init_workspace

    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        generate(folder / "sample", n, seed=1)
        ctx = init_workspace(folder / "ws")
        import_paths(ctx, ImportFiles(files_in_folder(folder / "sample")))

        def timed(fn: object) -> tuple[float, object]:
            start = time.perf_counter()
            out = fn()  # type: ignore[operator]
            return time.perf_counter() - start, out

        ref, _ = timed(lambda: analytics_queries.kpi_frame(ctx, monthly=True))
        t_health, run = timed(lambda: health.compute(ctx, LAST_DAY))
        t_intent, week = timed(lambda: intent.compute(ctx, LAST_DAY))
        t_report, html = timed(lambda: render_html(collect(ctx, date(2026, 10, 1)), "en"))
        ctx.dispose()
    print(f"customers {n:,}: {run.accounts:,} accounts, {run.customers:,} B2B people, "  # type: ignore[attr-defined]
          f"{week.pairs:,} account x topic pairs, report {len(html):,} bytes")  # type: ignore[attr-defined,arg-type]  # fmt: skip
    print(f"reference kpi_frame(monthly)   {ref:8.2f} s")
    for name, seconds in (("health compute", t_health), ("intent compute", t_intent),
                          ("monthly report (en)", t_report)):  # fmt: skip
        print(f"{name:<30} {seconds:8.2f} s   ratio to reference {seconds / ref:6.2f}")


if __name__ == "__main__":
    main()
