"""programme engine speed and extras (issue 4)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _dt(name: str) -> sa.Column[object]:
    return sa.Column(name, kizuna.store.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("point_accounts") as batch:
        batch.add_column(_dt("next_due_at"))
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("per_customer_limit", sa.Integer(), nullable=True))
    op.create_table(
        "coupon_uses",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("coupon_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("order_ref", sa.String(length=128), nullable=True),
        sa.Column("used_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_uses")),
    )
    op.create_index(
        "ix_coupon_uses_coupon_id_customer_id",
        "coupon_uses",
        ["coupon_id", "customer_id"],
        unique=False,
    )
    with op.batch_alter_table("programme_events") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(_dt("next_attempt_at"))
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch.add_column(_dt("failed_at"))
    op.create_table(
        "point_pools",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_point_pools_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_point_pools_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_pools")),
        sa.UniqueConstraint("account_id", name=op.f("uq_point_pools_account_id")),
    )


def downgrade() -> None:
    op.drop_table("point_pools")
    with op.batch_alter_table("programme_events") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
    op.drop_index("ix_coupon_uses_coupon_id_customer_id", table_name="coupon_uses")
    op.drop_table("coupon_uses")
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("per_customer_limit")
    with op.batch_alter_table("point_accounts") as batch:
        batch.drop_column("next_due_at")
