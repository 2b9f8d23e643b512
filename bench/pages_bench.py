"""Dashboard benchmark of the marketer's pages: cold and warm time of each page.

Generates a sample (default 20,000 customers), imports and scores it, adds a
segment and a journey run by the worker, then requests each page of the
``pages`` area through the ASGI app (no network: the figure is the server's
own time) as a logged-in marketer: once cold (what the first visitor after a
scoring run waits, personas and journey map included) and ``--repeat``
times warm, printing p50/p95. The reference is the overview page (``/``)
measured the same way in the same run; the ratio is page p95 / overview p95.

Goal (issue 6): every page under 300 ms at p95.

    python bench/pages_bench.py                  # 20,000 customers
    python bench/pages_bench.py --customers 100000
    python bench/pages_bench.py --smoke          # 300 customers, 3 repeats (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests.web.webclient (users and login)

PAGES = (
    "/",  # the reference
    "/customers/C0000001",
    "/programme",
    "/programme?simulate=1&amount1=5480&amount2=1200",
    "/segments",
    "/segments/bench",
    "/journeys",
    "/journeys/bench",
    "/measures",
    "/insights/personas",
    "/insights/drivers",
    "/journey-map",
    "/journey-map?persona=0",
    "/users",
)


def build(root: Path, customers: int) -> object:
    from tests.web.webclient import add_users

    from kizuna.automation.worker import run_worker
    from kizuna.ingest.sample import generate
    from kizuna.services import journeys, segments
    from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
    from kizuna.services.scoring import score
    from kizuna.services.uow import UnitOfWork
    from kizuna.services.workspace import init_workspace

    ctx = init_workspace(root / "ws")
    t0 = time.perf_counter()
    generate(root / "sample", customers, seed=5)
    import_paths(ctx, ImportFiles(files_in_folder(root / "sample")))
    score(ctx, as_of=date(2026, 10, 31))
    add_users(ctx)
    uow = lambda: UnitOfWork(ctx.engine, ctx.settings)  # noqa: E731
    rule = {"and": [{"aggregate": "orders", "op": "gte", "value": 3}, {"consent": "email"}]}
    segments.handle_save(segments.SaveSegment({"name": "bench", "rule": rule}), uow())
    doc = {"name": "bench", "holdout_percent": 10, "trigger": {"segment_entry": "bench"},
           "steps": [{"id": "t", "action": "create_task", "title": "call {{ name }}"}]}  # fmt: skip
    journeys.handle_save(journeys.SaveJourney(doc), uow())
    journeys.set_status("bench", "active", uow())
    now = datetime(2026, 11, 2, tzinfo=UTC)
    run_worker(ctx, once=True, clock=lambda: now, worker_id="b", refresh_segments_every_seconds=0)
    print(f"setup: {customers:,} customers in {time.perf_counter() - t0:.1f} s", flush=True)
    return ctx


async def measure(app: object, repeat: int) -> dict[str, tuple[float, float, float]]:
    from tests.web.webclient import login

    out = {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        http.cookies.set("kizuna_lang", "ja")
        await login(http, "admin")
        for path in PAGES:
            t0 = time.perf_counter()
            first = await http.get(path)
            cold = time.perf_counter() - t0
            assert first.status_code == 200, (path, first.status_code)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                response = await http.get(path)
                times.append(time.perf_counter() - t0)
                assert response.status_code == 200
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            out[path] = (cold * 1000, statistics.median(times) * 1000, p95 * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="300 customers, 3 repeats")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.repeat = 300, 3
    from kizuna.web import create_dashboard_app

    with tempfile.TemporaryDirectory() as tmp:
        ctx = build(Path(tmp), args.customers)
        app = create_dashboard_app(ctx)  # type: ignore[arg-type]
        result = asyncio.run(measure(app, args.repeat))
        ctx.dispose()  # type: ignore[attr-defined]
    ref = result["/"][2]
    print(f"{'page':<48} {'cold ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'p95/overview':>13}")
    for path, (cold, p50, p95) in result.items():
        print(f"{path:<48} {cold:>9.1f} {p50:>8.1f} {p95:>8.1f} {p95 / ref:>13.2f}")
    worst = max(p95 for _, _, p95 in result.values())
    print(f"worst p95: {worst:.1f} ms (goal < 300 ms); overview p95 (reference): {ref:.1f} ms")


if __name__ == "__main__":
    main()
