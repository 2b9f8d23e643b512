"""Tables of B2B intent, health scores and touch models (issue 8); migration 0009.

Health is stored per computation day (one ``health_runs`` row per local day,
replaced when the day is computed again) so every account and customer has a
trend. Intent is stored per account, topic and week, replaced when the week
is computed again. No column holds personal data: rows name accounts and
customers only by their surrogate ids.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, Money, UTCDateTime

COMPONENTS = ("usage", "breadth", "support", "nps", "training", "renewal")


def _components() -> list[sa.Column[float]]:
    """One nullable 0-1 column per health component (null: no signal)."""
    return [sa.Column(name, sa.Float) for name in COMPONENTS]


health_runs = sa.Table(
    "health_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("computed_on", sa.Date, nullable=False, unique=True),
    sa.Column("weights", JSONDoc, nullable=False),
    sa.Column("thresholds", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("accounts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("customers", sa.Integer, nullable=False, server_default="0"),
)

account_health = sa.Table(
    "account_health",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("health_runs.id"), primary_key=True),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True, index=True),
    sa.Column("score", sa.Float, nullable=False),
    *_components(),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("active_members", sa.Integer, nullable=False),
    sa.Column("revenue", Money, nullable=False),
    sa.Column("touch_model", sa.String(16), nullable=False),
)

customer_health = sa.Table(
    "customer_health",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("health_runs.id"), primary_key=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), primary_key=True, index=True),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id")),
    sa.Column("score", sa.Float, nullable=False),
    *_components(),
)

intent_scores = sa.Table(
    "intent_scores",
    metadata,
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("week_start", sa.Date, primary_key=True),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("z", sa.Float, nullable=False),
    sa.Column("p_value", sa.Float, nullable=False),
    sa.Column("surging", sa.Boolean, nullable=False),
    sa.Index("ix_intent_scores_week_start_topic", "week_start", "topic"),
)
