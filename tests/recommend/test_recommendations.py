"""Recommendations on the generator's sample: better than popularity, stored per run, rules kept."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from tests.recommend.recsample import AS_OF, load

from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary
from kizuna.services import recommendations, scoring
from kizuna.store import tables as t
from kizuna.store.recommend_tables import recommendation_runs
from kizuna.store.recommend_tables import recommendations as rec_table

#: Item-to-item must beat popularity's precision@10 by at least this much (measured: about +70%).
MARGIN = 0.30


def test_item_to_item_beats_popularity_on_the_planted_taste_groups(
    workspace: Context, rec_sample: SampleSummary
) -> None:
    load(workspace, rec_sample.out_dir)
    report = recommendations.evaluation_report(workspace, AS_OF, k=10, with_als=True)
    popular, similar, als = (report.results[m] for m in ("popular", "similar", "als"))
    assert similar.users == popular.users == als.users > 300
    assert similar.precision >= (1 + MARGIN) * popular.precision
    assert similar.recall > popular.recall and similar.ndcg > popular.ndcg
    # ALS is measured too, and used only when it wins.
    assert report.chosen == ("als" if als.precision > similar.precision else "similar")


def test_fit_stores_a_run_per_scoring_run_excluding_bought_and_unavailable_products(
    workspace: Context, rec_sample: SampleSummary
) -> None:
    load(workspace, rec_sample.out_dir)
    scored, _ = scoring.score(workspace, AS_OF.date())
    # One product goes out of stock and one inactive: neither may be recommended.
    with workspace.engine.connect() as conn:
        first = recommendations.fit(workspace, AS_OF, with_als=False)
        common = conn.execute(
            sa.select(rec_table.c.product_id, sa.func.count())
            .where(rec_table.c.run_id == first.id)
            .group_by(rec_table.c.product_id)
            .order_by(sa.func.count().desc())
            .limit(2)
        ).all()
        ids = {
            r.id: r.external_id
            for r in conn.execute(sa.select(t.products.c.id, t.products.c.external_id))
        }
    gone, retired = common[0][0], common[1][0]
    recommendations.set_stock(workspace, ids[gone], 0)
    with workspace.engine.begin() as conn:
        conn.execute(t.products.update().where(t.products.c.id == retired).values(active=False))
    run = recommendations.fit(workspace, AS_OF, with_als=False)
    assert run.id != first.id and run.scoring_run_id == first.scoring_run_id == scored.id
    assert run.model == "similar" and run.evaluation["chosen"] == "similar"
    assert (
        run.evaluation["models"]["similar"]["precision"]
        > run.evaluation["models"]["popular"]["precision"]
    )
    with workspace.engine.connect() as conn:
        stored = conn.execute(
            sa.select(rec_table.c.customer_id, rec_table.c.product_id).where(
                rec_table.c.run_id == run.id
            )
        ).all()
        bought = set(
            conn.execute(
                sa.select(t.order_lines.c.customer_id, t.order_lines.c.product_id)
                .join(t.orders, t.orders.c.id == t.order_lines.c.order_id)
                .where(t.orders.c.status != "cancelled")
            ).all()
        )
        status = conn.execute(
            sa.select(recommendation_runs.c.status).where(recommendation_runs.c.id == run.id)
        ).scalar_one()
    assert status == "complete"
    assert len(stored) == run.customers * run.per_customer
    assert not {(c, p) for c, p in stored} & bought
    assert gone not in {p for _, p in stored} and retired not in {p for _, p in stored}
    # The earlier run is kept unchanged: what was sent can be explained.
    with workspace.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(rec_table.c.run_id == first.id)
            ).scalar_one()
            == first.customers * first.per_customer
        )


def test_a_customer_without_history_gets_the_popular_products(
    workspace: Context, rec_sample: SampleSummary
) -> None:
    load(workspace, rec_sample.out_dir)
    run = recommendations.fit(workspace, AS_OF, with_als=False)
    with workspace.engine.begin() as conn:
        new_id = conn.execute(
            t.customers.insert()
            .values(external_id="CNEW", name="新規 顧客", signup_at=datetime.now(UTC))
            .returning(t.customers.c.id)
        ).scalar_one()
        buyer = conn.execute(sa.select(rec_table.c.customer_id).limit(1)).scalar_one()
        fresh = recommendations.recommendations_for(conn, new_id, 5)
        known = recommendations.recommendations_for(conn, buyer, 5)
    assert [r.id for r in fresh] == run.popular[:5]
    assert {r.source for r in fresh} == {"popular"}
    assert [r.rank for r in known] == [1, 2, 3, 4, 5]
    assert known[0].source == "similar" and known[0].name


def test_kizuna_score_also_recommends_when_asked(
    workspace: Context, rec_sample: SampleSummary
) -> None:
    from dataclasses import replace

    load(workspace, rec_sample.out_dir)
    ctx = Context(replace(workspace.settings, recommend_on_score=True))
    try:
        scored, _ = scoring.score(ctx, AS_OF.date())
        with ctx.engine.connect() as conn:
            run = recommendations.require_latest_run(conn)
    finally:
        ctx.dispose()
    assert run.scoring_run_id == scored.id and run.customers > 2_000
