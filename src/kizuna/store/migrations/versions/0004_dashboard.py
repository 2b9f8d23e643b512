"""dashboard users and audit log

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'marketer', 'analyst')", name=op.f("ck_dashboard_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_users")),
        sa.UniqueConstraint("username", name=op.f("uq_dashboard_users_username")),
    )
    op.create_table(
        "dashboard_audit",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_audit")),
    )
    with op.batch_alter_table("dashboard_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_audit_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_audit_at"))
    op.drop_table("dashboard_audit")
    op.drop_table("dashboard_users")
