"""scoring runs

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kizuna.store.tables import Id
from kizuna.store.types import JSONDoc, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("customers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("definition", JSONDoc, nullable=False),
        sa.Column("models", JSONDoc, nullable=False),
        sa.Column("kpis", JSONDoc, nullable=False),
        sa.Column("timings", JSONDoc, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scoring_runs"),
        sa.UniqueConstraint("version", name="uq_scoring_runs_version"),
    )
    op.create_index("ix_scoring_runs_as_of", "scoring_runs", ["as_of"])
    op.create_table(
        "customer_scores",
        sa.Column("run_id", Id, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
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
        sa.PrimaryKeyConstraint("run_id", "customer_id", name="pk_customer_scores"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["scoring_runs.id"],
            name="fk_customer_scores_run_id_scoring_runs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_scores_customer_id_customers"
        ),
    )
    op.create_index("ix_customer_scores_customer_id", "customer_scores", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_customer_scores_customer_id", table_name="customer_scores")
    op.drop_table("customer_scores")
    op.drop_index("ix_scoring_runs_as_of", table_name="scoring_runs")
    op.drop_table("scoring_runs")
