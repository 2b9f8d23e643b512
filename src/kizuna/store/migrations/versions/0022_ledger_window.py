"""ledger_window: a member's ledger entries by date, for the tier window read on every earn

Revision ID: 0022
Revises: 0021

Every earn sums the member's qualifying points (or spend, or orders) inside
the tier window. With only ``(customer_id, id)`` PostgreSQL visited every
entry the member ever had to test its date: a loyal member with 100 past
orders cost 100 heap reads per call, most of them outside the window
(measured: the group read's share of an earn doubled at 1M past orders).
``(customer_id, at)`` reads only the window; on PostgreSQL the summed columns
are included so the scan can be index-only.

Building it takes the ledger's write lock for as long as the build runs
(``docs/deployment.md``, "Upgrading between versions"); a large deployment
can build it beforehand with ``CREATE INDEX CONCURRENTLY`` under the same
name, and this migration then leaves it as it is.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_customer_id_at",
        "ledger_entries",
        ["customer_id", "at"],
        unique=False,
        postgresql_include=["kind", "qualifying_points", "qualifying_spend"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_customer_id_at", table_name="ledger_entries")
