"""email topics: per-topic subscriptions under the email consent

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "topic_subscriptions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", _ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("subscribed", sa.Boolean, nullable=False),
        sa.Column("changed_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.UniqueConstraint("customer_id", "topic"),
    )


def downgrade() -> None:
    op.drop_table("topic_subscriptions")
