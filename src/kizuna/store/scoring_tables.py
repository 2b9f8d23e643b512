"""Tables of scoring runs (per-customer scores stored as dated, versioned runs).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0003.

A run is never changed after it is written: segments and journeys of later
issues refer to a run by its id, and a new ``kizuna score`` adds a new run
with the next version, so what a campaign targeted can always be replayed.
``customer_scores`` carries ``customer_id`` in its key for distribution by
customer, like every per-customer table.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

scoring_runs = sa.Table(
    "scoring_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("version", sa.Integer, nullable=False, unique=True),
    sa.Column("as_of", sa.Date, nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("customers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("models", JSONDoc, nullable=False),
    sa.Column("kpis", JSONDoc, nullable=False),
    sa.Column("timings", JSONDoc, nullable=False),
)

customer_scores = sa.Table(
    "customer_scores",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), primary_key=True, index=True),
    sa.Column("frequency", sa.Integer, nullable=False),
    sa.Column("recency_days", sa.Integer, nullable=False),
    sa.Column("tenure_days", sa.Integer, nullable=False),
    sa.Column("total_amount", sa.BigInteger, nullable=False),
    sa.Column("r_score", sa.SmallInteger, nullable=False),
    sa.Column("f_score", sa.SmallInteger, nullable=False),
    sa.Column("m_score", sa.SmallInteger, nullable=False),
    sa.Column("rfm_segment", sa.String(32), nullable=False),
    sa.Column("p_alive", sa.Float, nullable=False),
    sa.Column("expected_purchases_1y", sa.Float, nullable=False),
    sa.Column("clv", sa.BigInteger, nullable=False),
    sa.Column("behaviour_score", sa.Float, nullable=False),
    sa.Column("attitude_score", sa.Float),
    sa.Column("loyalty", sa.String(16), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False),
    sa.Column("loyal_propensity", sa.Float),
)
