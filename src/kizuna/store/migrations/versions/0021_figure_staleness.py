"""figure staleness: one background recomputer per stale dashboard figure

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "figure_refresh",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128)),
        sa.Column("lease_until", kizuna.store.types.UTCDateTime(timezone=True)),
        sa.Column("started_at", kizuna.store.types.UTCDateTime(timezone=True)),
        sa.Column("requested_at", kizuna.store.types.UTCDateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("figure_refresh")
