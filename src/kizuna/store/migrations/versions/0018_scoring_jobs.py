"""scoring jobs: runs asked for over the API and run by a worker

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scoring_jobs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pending", sa.SmallInteger, nullable=True, unique=True),
        sa.Column("as_of", sa.Date, nullable=True),
        sa.Column("requested_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("started_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stage", sa.String(40), nullable=True),
        sa.Column("run_id", _ID, sa.ForeignKey("scoring_runs.id"), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_scoring_jobs_status", "scoring_jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_scoring_jobs_status", table_name="scoring_jobs")
    op.drop_table("scoring_jobs")
