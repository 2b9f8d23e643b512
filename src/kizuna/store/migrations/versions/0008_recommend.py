"""recommendations and next-best offers (issue 8)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _dt(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, kizuna.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "recommendation_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("scoring_run_id", _ID, nullable=True),
        _dt("created_at", False),
        _dt("as_of", False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("products", sa.Integer(), server_default="0", nullable=False),
        sa.Column("per_customer", sa.Integer(), nullable=False),
        sa.Column("evaluation", _JSON, nullable=False),
        sa.Column("popular", _JSON, nullable=False),
        sa.Column("pairs", _JSON, nullable=False),
        sa.Column("timings", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["scoring_run_id"],
            ["scoring_runs.id"],
            name=op.f("fk_recommendation_runs_scoring_run_id_scoring_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_runs")),
    )
    op.create_index(
        op.f("ix_recommendation_runs_scoring_run_id"),
        "recommendation_runs",
        ["scoring_run_id"],
        unique=False,
    )
    op.create_table(
        "recommendations",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", _ID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recommendation_runs.id"],
            name=op.f("fk_recommendations_run_id_recommendation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", "rank", name=op.f("pk_recommendations")),
    )
    op.create_index(
        "ix_recommendations_customer_id_run_id",
        "recommendations",
        ["customer_id", "run_id"],
        unique=False,
    )
    op.create_table(
        "product_stock",
        sa.Column("product_id", _ID, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _dt("updated_at", False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_stock_product_id_products")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_stock")),
    )
    op.create_table(
        "offers",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("margin", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=True),
        sa.Column("max_total", sa.Integer(), nullable=True),
        sa.Column("max_per_customer", sa.Integer(), server_default="1", nullable=False),
        sa.Column("rules", _JSON, nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _dt("valid_from", True),
        _dt("valid_until", True),
        _dt("created_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("code", name=op.f("uq_offers_code")),
    )
    op.create_table(
        "offer_assignments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("offer_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("batch", sa.String(length=100), nullable=False),
        _dt("assigned_at", False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("scoring_run_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_offer_assignments_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_assignments_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_assignments")),
        sa.UniqueConstraint(
            "offer_id",
            "customer_id",
            "batch",
            name=op.f("uq_offer_assignments_offer_id_customer_id_batch"),
        ),
    )
    op.create_index(
        "ix_offer_assignments_customer_id_offer_id",
        "offer_assignments",
        ["customer_id", "offer_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_offer_assignments_customer_id_offer_id", table_name="offer_assignments")
    op.drop_table("offer_assignments")
    op.drop_table("offers")
    op.drop_table("product_stock")
    op.drop_index("ix_recommendations_customer_id_run_id", table_name="recommendations")
    op.drop_table("recommendations")
    op.drop_index(op.f("ix_recommendation_runs_scoring_run_id"), table_name="recommendation_runs")
    op.drop_table("recommendation_runs")
