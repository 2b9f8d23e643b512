"""Analytics benchmark: the whole ``kizuna score`` and BG/NBD against ``lifetimes``.

On the sample generator's data (default 1M customers, ~20M order lines),
prints the wall time and peak RSS of a full scoring run (extract, summary,
CLV fit, predictions, RFM, attitude, loyalty matrix, KPIs, store) and of
each step; then fits BG/NBD and Gamma-Gamma with Kizuna and with the
``lifetimes`` package (0.11.3, in its own venv ``bench/.venv-lifetimes``,
created on first use) on the same per-customer summary, and prints both
parameter sets, both maximum log-likelihoods (evaluated with the same
formula) and the time ratio.

Goals: scoring < 60 s and < 4 GB peak RSS; BG/NBD fit >= 20x faster than
lifetimes with the same maximum log-likelihood (relative difference < 1e-6).

    python bench/analytics_bench.py                       # 1M customers
    python bench/analytics_bench.py --workspace DIR       # an already imported workspace
    python bench/analytics_bench.py --smoke               # tiny, for CI (lifetimes only if installed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
LIFETIMES_VENV = HERE / ".venv-lifetimes"

SCORE_CHILD = r"""
import json, sys, time
from datetime import date
from kizuna.bootstrap import open_context
from kizuna.services import scoring

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0

marks = []
def progress(step, what):
    marks.append((step, time.perf_counter(), hwm()))

ctx = open_context(sys.argv[1])
t0 = time.perf_counter()
run, result = scoring.score(ctx, date.fromisoformat(sys.argv[2]), progress)
wall = time.perf_counter() - t0
marks.append(("end", time.perf_counter(), hwm()))
# Peak RSS reached by the end of each step (VmHWM is monotone).
peaks = {marks[i][0]: marks[i + 1][2] for i in range(len(marks) - 1)}
print(json.dumps({"wall": wall, "peak_rss": hwm(), "timings": result.timings,
                  "peaks": peaks, "customers": run.customers, "models": run.models}))
"""

LIFETIMES_CHILD = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
import lifetimes.fitters as lf
from lifetimes import BetaGeoFitter, GammaGammaFitter
# Count lifetimes' objective evaluations (value and gradient, by autograd) and iterations.
real, stats = lf.minimize, {}
def counting(fun, *a, **k):
    calls = [0]
    def wrapped(*aa, **kk):
        calls[0] += 1
        return fun(*aa, **kk)
    res = real(wrapped, *a, **k)
    stats.setdefault("fits", []).append({"evaluations": calls[0], "iterations": int(res.nit)})
    return res
lf.minimize = counting
d = np.load(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
bgf = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"])
t_bg, cpu_bg = time.perf_counter() - t0, time.process_time() - c0
bg_stats = stats.pop("fits")[0]
keep = (d["frequency"] > 0) & (d["monetary"] > 0)
t0 = time.perf_counter()
ggf = GammaGammaFitter(penalizer_coef=0.0).fit(d["frequency"][keep], d["monetary"][keep])
t_gg = time.perf_counter() - t0
print(json.dumps({"bgnbd": {k: float(v) for k, v in bgf.params_.items()}, "bgnbd_seconds": t_bg,
                  "bgnbd_cpu": cpu_bg, "bgnbd_evaluations": bg_stats["evaluations"],
                  "bgnbd_iterations": bg_stats["iterations"],
                  "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()}, "gg_seconds": t_gg}))
"""


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def prepare(customers: int, seed: int, folder: Path) -> Path:
    """A workspace with the generator's sample imported (kept between runs)."""
    ws = folder / "ws"
    if (folder / "ready").exists():
        return ws
    kizuna = [str(Path(sys.executable).parent / "kizuna")]
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "KIZUNA_DATABASE_URL"}
    started = time.perf_counter()
    subprocess.run([*kizuna, "init", str(ws)], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*kizuna, "sample", "--customers", str(customers), "--seed", str(seed), "--out", str(folder / "sample")],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [*kizuna, "-w", str(ws), "import-folder", str(folder / "sample")],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    print(
        f"prepared {customers:,} customers in {time.perf_counter() - started:.0f} s (not timed below)"
    )
    (folder / "ready").write_text("ok")
    return ws


def sample_end(ws: Path) -> date:
    """The last local day with an order: score as of it, like a nightly run would."""
    import sqlalchemy as sa

    from kizuna.analytics import extract, kpi
    from kizuna.bootstrap import open_context
    from kizuna.store import tables

    ctx = open_context(ws)
    o = tables.orders
    with ctx.engine.connect() as conn:
        last = extract.fetch(
            conn,
            [extract.Col("last", sa.func.max(o.c.ordered_at), "instant")],
            o,
            timezone=ctx.settings.timezone,
        )
    ctx.dispose()
    return kpi.date_of(int(last["last_day"][0].as_py()))


def run_score(ws: Path, as_of: date) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCORE_CHILD, str(ws), as_of.isoformat()],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def ensure_lifetimes(allow_install: bool) -> Path | None:
    python = LIFETIMES_VENV / "bin" / "python"
    if python.exists():
        return python
    if not allow_install:
        return None
    print("creating bench/.venv-lifetimes with lifetimes 0.11.3 ...")
    subprocess.run([sys.executable, "-m", "venv", str(LIFETIMES_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "lifetimes==0.11.3"], check=True
    )
    return python


def summary_arrays(ws: Path, as_of: date) -> dict[str, np.ndarray]:
    """The per-customer summary in weeks, as ``kizuna score`` builds it."""
    from kizuna.analytics import engine, kpi, summary
    from kizuna.bootstrap import open_context

    ctx = open_context(ws)
    data = engine.load(ctx, names=("orders",))
    ctx.dispose()
    s = summary.transaction_summary(data["orders"], end_day=kpi.day_of(as_of) + 1, unit_days=7.0)
    t = s.to_pyarrow()
    return {k: t[k].to_numpy().astype(float) for k in ("frequency", "recency", "T", "monetary")}


def compare_lifetimes(arrays: dict[str, np.ndarray], python: Path) -> None:
    from kizuna.analytics.clv import bgnbd, gamma_gamma
    from kizuna.analytics.clv.mle import distinct_rows

    n = arrays["frequency"].size
    # Engine-grouped distinct histories with counts, as `kizuna score` fits them ...
    cols, weights = distinct_rows(arrays["frequency"], arrays["recency"], arrays["T"])
    counts = _count_evaluations(bgnbd)
    grouped, cpu_grouped = time.perf_counter(), time.process_time()
    ours_grouped = bgnbd.fit(*cols, weights=weights)
    fit_only = time.perf_counter() - grouped
    fit_cpu = time.process_time() - cpu_grouped
    counts.clear()
    # ... and one row per customer, as lifetimes gets them (and `kizuna clv fit` on a
    # summary file): the fit groups into distinct histories itself when that pays.
    started, cpu_started = time.perf_counter(), time.process_time()
    ours = bgnbd.fit(arrays["frequency"], arrays["recency"], arrays["T"])
    ours_bg = time.perf_counter() - started
    ours_cpu = time.process_time() - cpu_started
    assert abs(ours.log_likelihood - ours_grouped.log_likelihood) <= 1e-9 * abs(
        ours.log_likelihood
    ), (ours.log_likelihood, ours_grouped.log_likelihood)
    # The time of one evaluation of value and gradient on all rows, ours and theirs.
    probe = bgnbd._Objective(arrays["frequency"], arrays["recency"], arrays["T"], np.ones(n))
    probe_started = time.process_time()
    for _ in range(3):
        probe(ours.vector())
    per_eval_cpu = (time.process_time() - probe_started) / 3
    keep = (arrays["frequency"] > 0) & (arrays["monetary"] > 0)
    started = time.perf_counter()
    (gx, gm), gw = distinct_rows(arrays["frequency"][keep], arrays["monetary"][keep])
    ours_gg_fit = gamma_gamma.fit(gx, gm, weights=gw)
    ours_gg = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.npz"
        np.savez(path, **arrays)
        out = subprocess.run(
            [str(python), "-c", LIFETIMES_CHILD, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    lt_bg = [theirs["bgnbd"][k] for k in ("r", "alpha", "a", "b")]
    lt_gg = [theirs["gamma_gamma"][k] for k in ("p", "q", "v")]
    x, t_x, T = arrays["frequency"], arrays["recency"], arrays["T"]
    ll_ours = float(bgnbd.log_likelihood(ours.vector(), x, t_x, T).sum())
    ll_theirs = float(bgnbd.log_likelihood(lt_bg, x, t_x, T).sum())
    gg_ours = float(
        gamma_gamma.log_likelihood(ours_gg_fit.vector(), x[keep], arrays["monetary"][keep]).sum()
    )
    gg_theirs = float(gamma_gamma.log_likelihood(lt_gg, x[keep], arrays["monetary"][keep]).sum())
    print(
        f"\nBG/NBD on {n:,} customers ({ours_grouped.n_rows:,} distinct histories, "
        f"{probe.mixture_rows:,} rows in the fit's mixture term), weeks"
    )
    print(
        f"  kizuna    {ours_bg:7.3f} s  "
        + _params(ours.vector(), ("r", "alpha", "a", "b"))
        + f"  LL {ll_ours:,.4f}"
    )
    print(
        f"  lifetimes {theirs['bgnbd_seconds']:7.3f} s  "
        + _params(lt_bg, ("r", "alpha", "a", "b"))
        + f"  LL {ll_theirs:,.4f}"
    )
    rel = abs(ll_ours - ll_theirs) / abs(ll_theirs)
    print(
        f"  speed-up (wall) {theirs['bgnbd_seconds'] / ours_bg:.1f}x on one row per customer, "
        f"{theirs['bgnbd_seconds'] / fit_only:.1f}x on the engine's distinct histories (as in "
        "`kizuna score`); goal >= 20x"
    )
    print(f"  LL relative difference {rel:.2e} (goal < 1e-6)")
    full = counts.pop(n, {"calls": 0, "hessians": 0})
    full["calls"] -= 3  # the probe above
    sub_calls = sum(c["calls"] for c in counts.values())
    sub_rows = sum(rows * c["calls"] for rows, c in counts.items())
    print(
        f"  CPU time (all threads; fair under load) kizuna {ours_cpu:.3f} s "
        f"({fit_cpu:.3f} s on distinct histories), lifetimes {theirs['bgnbd_cpu']:.3f} s: "
        f"{theirs['bgnbd_cpu'] / ours_cpu:.1f}x ({theirs['bgnbd_cpu'] / fit_cpu:.1f}x)"
    )
    print(
        f"  objective evaluations on all {n:,} rows: kizuna {full['calls']} "
        f"({full['hessians']} with the exact Hessian, {ours.iterations} Newton iterations) "
        f"+ {sub_calls} on a subsample of {', '.join(f'{r:,}' for r in counts) or '-'} rows "
        f"(= {sub_rows / n:.2f} evaluations on all rows); lifetimes "
        f"{theirs['bgnbd_evaluations']} on {n:,} rows ({theirs['bgnbd_iterations']} BFGS iterations)"
    )
    lt_per_eval = theirs["bgnbd_cpu"] / max(1, theirs["bgnbd_evaluations"])
    print(
        f"  CPU per evaluation (value + gradient): kizuna {1e3 * per_eval_cpu:.1f} ms, lifetimes "
        f"{1e3 * lt_per_eval:.1f} ms ({lt_per_eval / per_eval_cpu:.1f}x)"
    )
    print(f"Gamma-Gamma on {int(keep.sum()):,} repeat customers")
    print(
        f"  kizuna    {ours_gg:7.3f} s  "
        + _params(ours_gg_fit.vector(), ("p", "q", "gamma"))
        + f"  LL {gg_ours:,.4f}"
    )
    print(
        f"  lifetimes {theirs['gg_seconds']:7.3f} s  "
        + _params(lt_gg, ("p", "q", "gamma"))
        + f"  LL {gg_theirs:,.4f}"
    )
    print(f"  speed-up {theirs['gg_seconds'] / ours_gg:.1f}x")


def _count_evaluations(module: Any) -> dict[int, dict[str, int]]:
    """Count BG/NBD objective evaluations per objective size (rows) by wrapping the objective."""
    counts: dict[int, dict[str, int]] = {}
    cls = module._Objective
    original = cls.evaluate

    def evaluate(self: Any, params: Any, second: bool = False) -> Any:
        entry = counts.setdefault(self.rows, {"calls": 0, "hessians": 0})
        entry["calls"] += 1
        entry["hessians"] += int(second)
        return original(self, params, second)

    cls.evaluate = evaluate
    return counts


def _params(values: object, names: tuple[str, ...]) -> str:
    return " ".join(f"{n}={v:.5g}" for n, v in zip(names, values, strict=True))  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workspace", type=Path, help="an imported workspace to score")
    parser.add_argument("--as-of", help="score as of this day (default: the last order day)")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--no-lifetimes", action="store_true", help="skip the lifetimes comparison")
    parser.add_argument(
        "--summary-npz",
        type=Path,
        help="only the lifetimes comparison, on a saved summary (frequency, recency, T, monetary)",
    )
    args = parser.parse_args()
    if args.summary_npz:
        python = ensure_lifetimes(allow_install=True)
        assert python is not None
        saved = np.load(args.summary_npz)
        compare_lifetimes({k: saved[k] for k in ("frequency", "recency", "T", "monetary")}, python)
        return
    customers = 2_000 if args.smoke else args.customers
    ws = args.workspace or prepare(
        customers, args.seed, HERE / "out" / f"analytics-{customers}-{args.seed}"
    )
    as_of = date.fromisoformat(args.as_of) if args.as_of else sample_end(ws)
    result = run_score(ws, as_of)
    print(f"kizuna score on {result['customers']:,} customers as of {as_of}")
    timings: dict[str, float] = result["timings"]  # type: ignore[assignment]
    peaks: dict[str, int] = result["peaks"]  # type: ignore[assignment]
    for step, seconds in timings.items():
        peak = peaks.get(step)
        print(
            f"  {step:12s} {seconds:7.2f} s" + (f"   peak RSS so far {gib(peak)}" if peak else "")
        )
    wall, rss = float(result["wall"]), float(result["peak_rss"])  # type: ignore[arg-type]
    print(f"  whole run    {wall:7.2f} s   peak RSS {gib(rss)}   (goals: < 60 s, < 4 GiB)")
    if args.no_lifetimes:
        return
    python = ensure_lifetimes(allow_install=not args.smoke)
    if python is None:
        print("lifetimes comparison skipped (bench/.venv-lifetimes not created in --smoke)")
        return
    compare_lifetimes(summary_arrays(ws, as_of), python)


if __name__ == "__main__":
    main()
