"""Advocacy benchmark: referral settlement and ambassador candidate ranking.

* **settle**: N referrals whose referee's first order passed its return
  window; ``kizuna referrals settle`` attributes the orders, runs the fraud
  checks and grants both sides. Reference, in the same run: the programme
  engine's own ``adjust`` (the grant the settlement calls), 2·N plain grants
  in their own transactions. Ratio = settled referrals/s ÷ (grants/s ÷ 2): the
  share of the bare grant speed left after attribution, fraud checks,
  fingerprints and events (1.0 = free).
* **candidates**: M customers with NPS answers, reviews, attendance and a
  scoring run; time to rank them all. Reference: the same grouped reads as
  plain SQL with nothing done in Python. Ratio = reference time ÷ ranking time.

    python bench/advocacy_bench.py --referrals 2000 --customers 200000
    python bench/advocacy_bench.py --smoke

PostgreSQL runs too when ``KIZUNA_BENCH_POSTGRES_URL`` or
``KIZUNA_TEST_POSTGRES_URL`` is set (its ``public`` schema is dropped and
recreated).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.services import ambassadors, referrals
from kizuna.services.programme import config
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.idempotency import Idem
from kizuna.services.uow import UnitOfWork
from kizuna.services.workspace import init_workspace
from kizuna.store import advocacy_tables as at
from kizuna.store import scoring_tables as st
from kizuna.store import tables as t

T0 = datetime(2026, 3, 2, 3, tzinfo=UTC)


def _workspace(root: Path, url: str | None) -> Context:
    if url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        return init_workspace(root, database_url=url)
    return init_workspace(root)


def _customers(ctx: Context, n: int, prefix: str) -> list[int]:
    rows = [{"external_id": f"{prefix}{i}", "name": f"顧客{i}", "email": f"{prefix}{i}@example.jp",
             "phone": f"090{ord(prefix[0]):02d}{i:06d}"} for i in range(n)]  # fmt: skip
    with ctx.engine.begin() as conn:
        for i in range(0, n, 5000):
            conn.execute(sa.insert(t.customers), rows[i : i + 5000])
        return list(
            conn.execute(
                sa.select(t.customers.c.id)
                .where(t.customers.c.external_id.startswith(prefix))
                .order_by(t.customers.c.id)
            ).scalars()
        )


def bench_settle(ctx: Context, n: int) -> tuple[float, float]:
    config.forget_cache()
    referrers = _customers(ctx, n, "R")
    referees = _customers(ctx, n, "E")
    with ctx.engine.begin() as conn:
        codes = [
            {"customer_id": c, "code": f"B{i:07d}"[:8], "created_at": T0}
            for i, c in enumerate(referrers)
        ]
        conn.execute(sa.insert(at.referral_codes), codes)
        conn.execute(sa.insert(t.referrals), [
            {"external_id": f"kizuna:referee:{e}", "referrer_id": r, "referee_id": e,
             "code": codes[i]["code"], "referred_at": T0}
            for i, (r, e) in enumerate(zip(referrers, referees, strict=True))])  # fmt: skip
        conn.execute(sa.insert(t.orders), [
            {"external_id": f"O{e}", "customer_id": e, "ordered_at": T0 + timedelta(hours=1),
             "total_amount": 5000} for e in referees])  # fmt: skip
    started = time.perf_counter()
    report = referrals.settle(ctx.engine, ctx.settings, T0 + timedelta(days=40))
    settle_s = time.perf_counter() - started
    assert report.rewarded == n, report
    grantees = _customers(ctx, 2 * n, "G")
    started = time.perf_counter()
    for i, _cid in enumerate(grantees):
        key = f"bench:{i}"
        idem = Idem(key, hashlib.sha256(key.encode()).hexdigest())
        with UnitOfWork(ctx.engine, ctx.settings) as uow:
            adjust(uow, Adjust(f"G{i}", 500, "bench", "bench", idem), T0)
    grant_s = time.perf_counter() - started
    return n / settle_s, 2 * n / grant_s


def bench_candidates(ctx: Context, m: int) -> tuple[float, float]:
    rng = random.Random(7)
    ids = _customers(ctx, m, "C")
    with ctx.engine.begin() as conn:
        run = conn.execute(sa.insert(st.scoring_runs).values(
            version=1, as_of=T0.date(), created_at=T0, status="complete", engine="duckdb",
            definition={}, models={}, kpis={}, timings={}).returning(st.scoring_runs.c.id)).scalar_one()  # fmt: skip
        ev = conn.execute(sa.insert(t.community_events).values(
            external_id="bench", name="bench", kind="meetup", starts_at=T0).returning(t.community_events.c.id)).scalar_one()  # fmt: skip
        batch: dict[str, list[dict[str, object]]] = {"nps": [], "rev": [], "att": [], "sc": []}
        for i, cid in enumerate(ids):
            if rng.random() < 0.3:
                batch["nps"].append({"external_id": f"n{i}", "customer_id": cid, "kind": "nps",
                                     "score": rng.randint(0, 10), "answered_at": T0})  # fmt: skip
            if rng.random() < 0.2:
                batch["rev"].append({"external_id": f"r{i}", "customer_id": cid, "kind": "review",
                                     "rating": 5, "posted_at": T0})  # fmt: skip
            if rng.random() < 0.1:
                batch["att"].append({"external_id": f"a{i}", "customer_id": cid, "kind": "event_attendance",
                                     "community_event_id": ev, "occurred_at": T0})  # fmt: skip
            batch["sc"].append({"run_id": run, "customer_id": cid, "frequency": 1, "recency_days": 1,
                                "tenure_days": 1, "total_amount": 0, "r_score": 1, "f_score": 1,
                                "m_score": 1, "rfm_segment": "x", "p_alive": 1.0,
                                "expected_purchases_1y": 1.0, "clv": rng.randint(0, 10**6),
                                "behaviour_score": 0.5, "loyalty": "none", "lifecycle": "active"})  # fmt: skip
        for table, key in (
            (t.survey_answers, "nps"),
            (t.reviews, "rev"),
            (t.community_activity, "att"),
            (st.customer_scores, "sc"),
        ):
            rows = batch[key]
            for i in range(0, len(rows), 5000):
                conn.execute(sa.insert(table), rows[i : i + 5000])
    now = T0 + timedelta(days=1)
    with ctx.engine.connect() as conn:
        started = time.perf_counter()
        found = ambassadors.candidates(conn, now, limit=100)
        rank_s = time.perf_counter() - started
        assert found
        r, ca, sa_, cs = (
            t.reviews.c,
            t.community_activity.c,
            t.survey_answers.c,
            st.customer_scores.c,
        )
        started = time.perf_counter()
        for stmt in (
            sa.select(r.customer_id, sa.func.count()).group_by(r.customer_id),
            sa.select(ca.customer_id, sa.func.count()).group_by(ca.customer_id),
            sa.select(sa_.customer_id, sa.func.max(sa_.score)).group_by(sa_.customer_id),
            sa.select(cs.customer_id, cs.clv).where(cs.run_id == run),
        ):
            conn.execute(stmt).all()
        plain_s = time.perf_counter() - started
    return rank_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.referrals, args.customers = 20, 2000
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    url = os.environ.get("KIZUNA_BENCH_POSTGRES_URL") or os.environ.get("KIZUNA_TEST_POSTGRES_URL")
    if url:
        backends.append(("PostgreSQL", url))
    for name, db in backends:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = _workspace(Path(tmp) / "s", db)
            settled, grants = bench_settle(ctx, args.referrals)
            ctx.dispose()
            print(f"{name} settle: {args.referrals:,} referrals, {settled:,.0f} referrals/s; "
                  f"reference adjust {grants:,.0f} grants/s; ratio {settled / (grants / 2):.2f}")  # fmt: skip
            ctx = _workspace(Path(tmp) / "c", db)
            rank_s, plain_s = bench_candidates(ctx, args.customers)
            ctx.dispose()
            print(f"{name} candidates: {args.customers:,} customers ranked in {rank_s:.2f} s; "
                  f"reference plain reads {plain_s:.2f} s; ratio {plain_s / rank_s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
