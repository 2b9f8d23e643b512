"""B2B intent, health scores, touch models and reports (issue 8)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_COMPONENTS = ("usage", "breadth", "support", "nps", "training", "renewal")


def _dt(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, kizuna.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _components() -> list[sa.Column[float]]:
    return [sa.Column(name, sa.Float(), nullable=True) for name in _COMPONENTS]


def upgrade() -> None:
    op.create_table(
        "health_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("weights", _JSON, nullable=False),
        sa.Column("thresholds", _JSON, nullable=False),
        _dt("created_at", False),
        sa.Column("accounts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("customers", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_runs")),
        sa.UniqueConstraint("computed_on", name=op.f("uq_health_runs_computed_on")),
    )
    op.create_table(
        "account_health",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        *_components(),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("active_members", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("touch_model", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_health_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["health_runs.id"], name=op.f("fk_account_health_run_id_health_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "account_id", name=op.f("pk_account_health")),
    )
    op.create_index(
        op.f("ix_account_health_account_id"), "account_health", ["account_id"], unique=False
    )
    op.create_table(
        "customer_health",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        *_components(),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_customer_health_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_health_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["health_runs.id"], name=op.f("fk_customer_health_run_id_health_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_customer_health")),
    )
    op.create_index(
        op.f("ix_customer_health_customer_id"), "customer_health", ["customer_id"], unique=False
    )
    op.create_table(
        "intent_scores",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        _dt("computed_at", False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("z", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("surging", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_intent_scores_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "topic", "week_start", name=op.f("pk_intent_scores")),
    )
    op.create_index(
        "ix_intent_scores_week_start_topic",
        "intent_scores",
        ["week_start", "topic"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_intent_scores_week_start_topic", table_name="intent_scores")
    op.drop_table("intent_scores")
    op.drop_index(op.f("ix_customer_health_customer_id"), table_name="customer_health")
    op.drop_table("customer_health")
    op.drop_index(op.f("ix_account_health_account_id"), table_name="account_health")
    op.drop_table("account_health")
    op.drop_table("health_runs")
