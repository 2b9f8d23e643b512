"""web precompute: dashboard artefacts computed once per scoring run

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_artefacts",
        sa.Column("run_id", _ID, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(1000), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_artefacts")
