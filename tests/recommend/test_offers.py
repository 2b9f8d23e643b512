"""Next-best offers on the sample: budgets and caps hold, reasons are shown, the API answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.apiclient import make_key
from tests.recommend.recsample import AS_OF, load

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.errors import ValidationError
from kizuna.ingest.sample import SampleSummary
from kizuna.services import offers, recommendations, scoring
from kizuna.services.programme import coupons
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.store.recommend_tables import offer_assignments
from kizuna.store.scoring_tables import customer_scores


@pytest.fixture
def scored(workspace: Context, rec_sample: SampleSummary) -> Iterator[Context]:
    load(workspace, rec_sample.out_dir)
    scoring.score(workspace, AS_OF.date())
    recommendations.fit(workspace, AS_OF, with_als=False)
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        coupons.generate(uow, count=5, kind="percent", value=10, batch="grinder-10")
        uow.commit()
    yield workspace


def popular_pair(ctx: Context) -> tuple[str, str]:
    """A product many bought (A) and one fewer bought (B), for "bought A, not yet B"."""
    with ctx.engine.connect() as conn:
        ranked = conn.execute(
            sa.select(
                t.products.c.external_id, sa.func.count(sa.distinct(t.order_lines.c.customer_id))
            )
            .join(t.order_lines, t.order_lines.c.product_id == t.products.c.id)
            .group_by(t.products.c.external_id)
            .order_by(sa.func.count(sa.distinct(t.order_lines.c.customer_id)).desc())
        ).all()
    return ranked[0][0], ranked[5][0]


def test_assign_respects_budget_and_caps_and_never_assigns_twice(scored: Context) -> None:
    a, b = popular_pair(scored)
    offers.save_offer(scored, offers.OfferSpec(
        "GRINDER", "ミル 10%オフ", "coupon", margin=3_000, cost=400, reference="grinder-10",
        budget=4_000, rules={"bought_any": [a], "not_bought": [b]},
    ))  # fmt: skip
    offers.save_offer(scored, offers.OfferSpec("NEWS", "新商品のご案内", "content", margin=200,
                                               max_total=25))  # fmt: skip
    offers.save_offer(scored, offers.OfferSpec("LOYAL", "ロイヤル限定", "content", margin=90_000,
                                               max_total=5, rules={"lifecycle": ["loyal"]}))  # fmt: skip
    first = offers.assign(scored, "2026-11")
    assert first.by_offer["LOYAL"] == 5
    assert first.by_offer["GRINDER"] == 10  # 4,000 / 400: the budget, exactly
    assert first.spent["GRINDER"] == 4_000
    assert first.by_offer["NEWS"] == 25
    again = offers.assign(scored, "2026-11")
    assert again.assigned == 0  # budget and cap used up, and the batch is remembered
    with scored.engine.connect() as conn:
        rows = conn.execute(sa.select(offer_assignments)).all()
        bought = dict(
            conn.execute(
                sa.select(t.order_lines.c.customer_id, sa.func.count())
                .join(t.products, t.products.c.id == t.order_lines.c.product_id)
                .where(t.products.c.external_id == b)
                .group_by(t.order_lines.c.customer_id)
            ).all()
        )
        events = conn.execute(
            sa.select(sa.func.count()).where(t.events.c.type == "offer_assigned")
        ).scalar_one()
    assert len(rows) == 40 == events
    assert len({r.customer_id for r in rows}) == 40
    loyal_ids = [r.customer_id for r in rows if r.expected_value > 0 and r.cost == 0 and any(
        "lifecycle stage loyal is targeted" in x for x in r.reasons)]  # fmt: skip
    with scored.engine.connect() as conn:
        stages = set(
            conn.execute(
                sa.select(customer_scores.c.lifecycle).where(
                    customer_scores.c.customer_id.in_(loyal_ids),
                    customer_scores.c.run_id == first.scoring_run_id,
                )
            ).scalars()
        )
    assert len(loyal_ids) == 5 and stages == {"loyal"}
    grinder = [r for r in rows if r.cost == 400]
    assert all(r.customer_id not in bought for r in grinder)  # not yet B
    assert all(any(f"bought {a}" in x for x in r.reasons) for r in grinder)
    with scored.engine.connect() as conn:
        table = {r["code"]: r for r in offers.offer_table(conn)}
    assert table["GRINDER"]["spent"] == 4_000 and table["NEWS"]["assigned"] == 25


def test_best_offer_follows_expected_value_with_reasons_over_the_api(scored: Context) -> None:
    offers.save_offer(scored, offers.OfferSpec("SMALL", "小", "content", margin=100))
    offers.save_offer(scored, offers.OfferSpec("BIG", "大", "content", margin=5_000))
    with pytest.raises(ValidationError, match="no coupon batch 'nope'"):
        offers.save_offer(scored, offers.OfferSpec("C", "c", "coupon", margin=1, reference="nope"))
    with scored.engine.connect() as conn:
        cid, ext = conn.execute(
            sa.select(t.customers.c.id, t.customers.c.external_id)
            .join(t.order_lines, t.order_lines.c.customer_id == t.customers.c.id)
            .limit(1)
        ).one()
        ranked = offers.ranked_for(conn, cid)
    assert [c.offer.code for c in ranked] == ["BIG", "SMALL"]
    assert ranked[0].expected_value == pytest.approx(ranked[0].propensity * 5_000)
    key = make_key(scored, "analyst")
    with TestClient(create_app(scored), raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {key}"}
        nbo = client.get(f"/v1/customers/{ext}/next-best-offer?alternatives=true", headers=headers)
        assert nbo.status_code == 200, nbo.text
        doc = nbo.json()
        assert doc["offer"]["offer"] == "BIG" and doc["offer"]["reasons"]
        assert [x["offer"] for x in doc["alternatives"]] == ["SMALL"]
        recs = client.get(f"/v1/customers/{ext}/recommendations?n=3", headers=headers)
        assert recs.status_code == 200, recs.text
        assert len(recs.json()["items"]) == 3 and recs.json()["items"][0]["product_id"].startswith(
            "P"
        )
        missing = client.get("/v1/customers/NOPE/next-best-offer", headers=headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert (
            client.get(f"/v1/customers/{ext}/recommendations?n=0", headers=headers).status_code
            == 422
        )
        assert client.get(f"/v1/customers/{ext}/recommendations").status_code == 401
