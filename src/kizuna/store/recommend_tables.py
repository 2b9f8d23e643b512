"""Tables of recommendations and next-best offers (issue 8); migration 0008.

A recommendation run is written once and never changed, like a scoring run:
a message sent last week can be explained by the run it read. Runs point at
the scoring run they were made with (``scoring_run_id``, nullable because
``kizuna recommend fit`` also works before the first ``kizuna score``).

``product_stock`` adds the notion of stock the canonical ``products`` table
lacks (it only knows ``active``): a product with ``quantity <= 0`` is never
recommended. Products without a row are taken to be in stock.

``offer_assignments`` is the ledger of who was offered what: caps and budgets
are counted from it, and its unique ``(offer_id, customer_id, batch)`` makes
a repeated ``kizuna offers assign --batch X`` assign nothing twice.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, Money, UTCDateTime

recommendation_runs = sa.Table(
    "recommendation_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("scoring_run_id", Id, sa.ForeignKey("scoring_runs.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("as_of", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model", sa.String(16), nullable=False),
    sa.Column("customers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("products", sa.Integer, nullable=False, server_default="0"),
    sa.Column("per_customer", sa.Integer, nullable=False),
    #: The offline evaluation of the run's model (precision/recall/NDCG@k vs popularity).
    sa.Column("evaluation", JSONDoc, nullable=False),
    #: The most popular allowed product ids: what a customer with no history is shown.
    sa.Column("popular", JSONDoc, nullable=False),
    #: The strongest co-purchased pairs, for the dashboard.
    sa.Column("pairs", JSONDoc, nullable=False),
    sa.Column("timings", JSONDoc, nullable=False),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column(
        "run_id",
        Id,
        sa.ForeignKey("recommendation_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("customer_id", Id, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("product_id", Id, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    #: "similar" (item-to-item), "als" or "popular" (the fallback).
    sa.Column("source", sa.String(16), nullable=False),
    sa.Index("ix_recommendations_customer_id_run_id", "customer_id", "run_id"),
)

product_stock = sa.Table(
    "product_stock",
    metadata,
    sa.Column("product_id", Id, sa.ForeignKey("products.id"), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    #: coupon (a coupon batch of the programme), reward (a programme reward) or content.
    sa.Column("kind", sa.String(16), nullable=False),
    #: The coupon batch or reward external id the offer stands for.
    sa.Column("reference", sa.String(128)),
    sa.Column("margin", Money, nullable=False),
    sa.Column("cost", Money, nullable=False, server_default="0"),
    sa.Column("budget", Money),
    sa.Column("max_total", sa.Integer),
    sa.Column("max_per_customer", sa.Integer, nullable=False, server_default="1"),
    #: Eligibility rules, see :mod:`kizuna.domain.offers`.
    sa.Column("rules", JSONDoc, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("valid_from", UTCDateTime),
    sa.Column("valid_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

offer_assignments = sa.Table(
    "offer_assignments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("offer_id", Id, sa.ForeignKey("offers.id"), nullable=False),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("batch", sa.String(100), nullable=False),
    sa.Column("assigned_at", UTCDateTime, nullable=False),
    sa.Column("cost", Money, nullable=False),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("expected_value", sa.Float, nullable=False),
    sa.Column("reasons", JSONDoc, nullable=False),
    sa.Column("scoring_run_id", Id),
    sa.UniqueConstraint("offer_id", "customer_id", "batch"),
    sa.Index("ix_offer_assignments_customer_id_offer_id", "customer_id", "offer_id"),
)
