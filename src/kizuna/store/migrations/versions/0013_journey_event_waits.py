"""journeys: waits that end when the customer does something

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journey_runs") as batch:
        batch.add_column(
            sa.Column("waiting_since", kizuna.store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("journey_runs") as batch:
        batch.drop_column("waiting_since")
