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

#: Scoring runs asked for over the API (or the dashboard) and run by a worker:
#: at a million customers a run takes minutes, longer than any HTTP request
#: should. ``queued`` → ``running`` (one worker holds it, beating
#: ``heartbeat_at``) → ``done`` (``run_id`` set) or ``failed`` (``error`` says
#: why). A running job whose heartbeat stopped (its worker died) is queued
#: again by the next worker that looks. Migration 0018.
scoring_jobs = sa.Table(
    "scoring_jobs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    # 1 while queued or running, NULL after: the unique index allows one
    # pending job, so a second request joins it instead of doubling the load.
    sa.Column("pending", sa.SmallInteger, nullable=True, unique=True),
    sa.Column("as_of", sa.Date, nullable=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("requested_by", sa.String(100), nullable=False),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("heartbeat_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stage", sa.String(40), nullable=True),
    sa.Column("run_id", Id, sa.ForeignKey("scoring_runs.id"), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
