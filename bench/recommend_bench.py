"""Recommendation benchmark: item-to-item vs ``implicit``'s ALS on 1M customers x 10k products.

Synthetic purchases with planted structure, generated in numpy in seconds:
customers belong to one of ``--groups`` taste groups; each group has its own
slice of the catalogue, and a customer's purchases come from the group's
slice with probability 0.7 (Zipf popularity inside the slice) and from the
whole catalogue otherwise (global Zipf popularity). Each purchase gets a
random time; the last 20% of time is the holdout.

For each model, in a forked child process (so each peak is its own): fit on
the training purchases, compute every customer's top 10 (already-bought
products excluded, popularity fallback), and report wall time and peak RSS
(``VmHWM`` of the child; ``data`` is the peak before the model starts, the
data the child inherits). Then precision@10 on customers with history and
new products in the holdout (``--eval-users`` of them), for both models and
for the popularity baseline.

The reference is ``implicit.cpu.als.AlternatingLeastSquares`` measured in
the same run; the ratio printed is item-to-item's time over ALS's.

    python bench/recommend_bench.py                 # 1M customers x 10k products
    python bench/recommend_bench.py --customers 200000
    python bench/recommend_bench.py --smoke         # tiny, seconds
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from kizuna.analytics.recommend import ItemItem, Popularity, top_n  # noqa: E402
from kizuna.analytics.recommend.als import ALS  # noqa: E402
from kizuna.analytics.recommend.interactions import time_split  # noqa: E402
from kizuna.analytics.recommend.metrics import ranking_metrics  # noqa: E402


def hwm() -> int:
    """Peak resident memory of this process in bytes (Linux ``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def synthesise(
    customers: int, products: int, groups: int, mean_items: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchase lines (customer, product, time in [0, 1)) with planted taste groups."""
    rng = np.random.default_rng(seed)
    per = 1 + rng.poisson(mean_items - 1, customers)
    cust = np.repeat(np.arange(customers, dtype=np.int64), per)
    group = cust % groups
    size = products // groups
    own = rng.random(cust.size) < 0.7
    inside = np.minimum(rng.zipf(1.3, cust.size) - 1, size - 1)
    everywhere = np.minimum(rng.zipf(1.2, cust.size) - 1, products - 1)
    # Global popularity in a shuffled order, so it is not the groups' slices.
    shuffle = rng.permutation(products)
    product = np.where(own, group * size + inside, shuffle[everywhere]).astype(np.int64)
    when = rng.random(cust.size)
    return cust, product, when


def _child(name: str, args: dict[str, Any], queue: Any) -> None:
    data = GLOBAL["data"]
    split = GLOBAL["split"]
    base = hwm()
    started = time.perf_counter()
    if name == "similar":
        model: Any = ItemItem(neighbours=args["neighbours"])
    else:
        model = ALS(factors=args["factors"], iterations=args["iterations"], threads=2)
    model.fit(split.train)
    fitted = time.perf_counter()
    popular = data["popular"]
    everyone = np.arange(split.train.shape[0])
    top = top_n(model, split.train, everyone, popular, 10, batch=args["batch"])
    done = time.perf_counter()
    users = data["eval_users"]
    precision, recall, ndcg = ranking_metrics(top.items[users], split.truth[users], 10)
    queue.put(
        {
            "model": name, "fit_s": fitted - started, "recommend_s": done - fitted,
            "total_s": done - started, "peak_rss": hwm(), "data_rss": base,
            "precision": precision, "recall": recall, "ndcg": ndcg,
        }
    )  # fmt: skip


GLOBAL: dict[str, Any] = {}


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    cust, product, when = synthesise(
        args.customers, args.products, args.groups, args.mean_items, args.seed
    )
    split = time_split(cust, product, when, 0.8, args.products)
    gen_s = time.perf_counter() - t0
    popular = Popularity().fit(split.train).share
    rng = np.random.default_rng(1)
    users = split.users
    if users.size > args.eval_users:
        users = np.sort(rng.choice(users, args.eval_users, replace=False))
    pop_top = top_n(Popularity().fit(split.train), split.train, users, popular, 10)
    pop_metrics = ranking_metrics(pop_top.items, split.truth[users], 10)
    GLOBAL["split"] = split
    GLOBAL["data"] = {"popular": popular, "eval_users": users}
    print(
        f"data: {args.customers:,} customers x {args.products:,} products, "
        f"{split.train.nnz:,} training pairs, {split.truth.nnz:,} holdout pairs "
        f"(generated in {gen_s:.1f} s); evaluating on {users.size:,} customers"
    )
    results = {"popular": {"precision": pop_metrics[0], "recall": pop_metrics[1],
                           "ndcg": pop_metrics[2]}}  # fmt: skip
    ctx = mp.get_context("fork")
    options = {"neighbours": args.neighbours, "factors": args.factors,
               "iterations": args.iterations, "batch": args.batch}  # fmt: skip
    for name in ("similar", "als"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, options, queue))
        proc.start()
        result = queue.get()
        proc.join()
        results[name] = result
        print(
            f"{name:8s} fit {result['fit_s']:7.1f} s  top-10 for all {result['recommend_s']:7.1f} s"
            f"  total {result['total_s']:7.1f} s  peak RSS {result['peak_rss'] / 2**30:5.2f} GiB"
            f" (data {result['data_rss'] / 2**30:4.2f} GiB)  precision@10 {result['precision']:.4f}"
        )
    s, a = results["similar"], results["als"]
    print(f"popular  precision@10 {results['popular']['precision']:.4f} (baseline)")
    print(
        f"ratio item-to-item / ALS: time {s['total_s'] / a['total_s']:.2f}, "
        f"precision@10 {s['precision'] / a['precision']:.2f}"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--mean-items", type=float, default=10.0)
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--eval-users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=str, default=None, help="Also write results here.")
    parser.add_argument("--smoke", action="store_true", help="Tiny size for CI (seconds).")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.products, args.eval_users, args.iterations = 3_000, 300, 2_000, 5
    results = run(args)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
